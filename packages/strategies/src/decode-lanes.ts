import { laneCheck, type ChainStep } from '@seqpar/kernels';
import type { DecodeLane } from '@seqpar/transport';
import type { RankContext } from './rank-context.js';

/**
 * The decode exchange (decode.ts) done on the compute thread as a step of a chain, through the transport's decode
 * lanes (shm only): a decode step of every layer is then one chain per rank. The scope holds the lanes (their files
 * stay open) and bounds the chain's waits by the request's timeout and signal, until it is disposed after the
 * chain has run.
 */
export interface LaneExchanges extends Disposable {
  /** The step that exchanges the partials of `rows` (indices into the latest outputs out and lse) under `tag`. */
  step(tag: string, rows: readonly number[]): ChainStep;
}

/**
 * Lane exchanges among `ctx`'s ranks, or undefined where some peer has no lane (ws, inproc, a wrapped transport):
 * then the exchange goes through gatherDecodePartials. Every rank of an exchange gets the same answer, since an shm
 * endpoint has every lane once its connect resolved. Every rank must build its steps in the same order, since
 * each lane numbers its exchanges. A compute thread blocked in an exchange cannot watch a clock or a signal, so
 * the timeout and an abort fail the lanes from here, which wakes it (transport decode-lane.ts).
 */
export function laneExchanges(ctx: RankContext): LaneExchanges | undefined {
  const { rank, worldSize: n } = ctx;
  if (n === 1 || !ctx.transport.decodeLane) return undefined;
  const lanes = Array.from({ length: n }, (_, p) => (p === rank ? null : ctx.transport.decodeLane!(p)));
  if (lanes.includes(undefined)) return undefined;
  const peers = lanes.filter((lane): lane is DecodeLane => lane !== null);
  const timer = setTimeout(() => peers.forEach((lane) => lane.fail('ERR_TIMEOUT')), ctx.timeoutMs);
  const abort = () => peers.forEach((lane) => lane.fail('ERR_ABORTED'));
  ctx.signal?.addEventListener('abort', abort, { once: true });
  if (ctx.signal?.aborted) abort();
  const held: (() => void)[] = [];
  return {
    step: (tag, rows) => {
      const ends = lanes.map((lane) => {
        if (!lane) return null;
        const { ends, release } = lane.acquire();
        held.push(release);
        return ends;
      });
      return { exchange: { rank, lanes: ends, check: laneCheck(`${ctx.tagPrefix}${tag}`), rows } };
    },
    [Symbol.dispose]: () => {
      clearTimeout(timer);
      ctx.signal?.removeEventListener('abort', abort);
      for (const release of held.splice(0)) release();
    },
  };
}
