import { laneCheck, type ChainStep } from '@seqpar/kernels';
import type { RankContext } from './rank-context.js';

/**
 * The decode exchange (decode.ts) done on the compute thread as a step of a chain, through the transport's decode
 * lanes (shm only): a decode step of every layer is then one chain per rank. The lanes stay held (their files open)
 * until the scope is disposed, after the chain has run.
 */
export interface LaneExchanges extends Disposable {
  /** The step that exchanges the partials of `rows` (indices into the latest outputs out and lse) under `tag`. */
  step(tag: string, rows: readonly number[]): ChainStep;
}

/**
 * Lane exchanges among `ctx`'s ranks, or undefined where some peer has no lane (ws, inproc, a wrapped transport):
 * then the exchange goes through gatherDecodePartials. Every rank of an exchange gets the same answer, since an shm
 * endpoint has every lane once its connect resolved. Every rank must build its steps in the same order, since
 * each lane numbers its exchanges.
 */
export function laneExchanges(ctx: RankContext): LaneExchanges | undefined {
  const { rank, worldSize: n } = ctx;
  if (n === 1 || !ctx.transport.decodeLane) return undefined;
  const lanes = Array.from({ length: n }, (_, p) => (p === rank ? null : ctx.transport.decodeLane!(p)));
  if (lanes.includes(undefined)) return undefined;
  const held: (() => void)[] = [];
  return {
    step: (tag, rows) => {
      const ends = lanes.map((lane) => {
        if (!lane) return null;
        const { ends, release } = lane.acquire();
        held.push(release);
        return ends;
      });
      return { exchange: { rank, lanes: ends, check: laneCheck(`${ctx.tagPrefix}${tag}`), rows, timeoutMs: ctx.timeoutMs } };
    },
    [Symbol.dispose]: () => {
      for (const release of held.splice(0)) release();
    },
  };
}
