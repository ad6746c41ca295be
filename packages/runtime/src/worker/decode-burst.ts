import { SeqparError } from '@seqpar/core';
import { withComputePriority } from '@seqpar/kernels';
import { decodeRows, type RankSession } from '@seqpar/model';
import { broadcast, type FrameHeader } from '@seqpar/transport';
import type { EmitPartial, WorkerContext } from './worker-ops.js';

/** One row of a burst on this rank: a session it holds and where that session stands. */
export interface BurstRow {
  readonly id: number;
  readonly session: RankSession;
  /** Tokens that end the session (its EOS ids, none where EOS is ignored). */
  readonly stop: ReadonlySet<number>;
  /** The session's last token and that token's position: the input of the row's next step. */
  token: number;
  position: number;
  /** Tokens the session may still sample. */
  budget: number;
}

/** What a rank streams after each step of a burst: the step (from 0) and the tokens it sampled, [session, token]. */
export interface BurstTokens {
  readonly step: number;
  readonly tokens: [number, number][];
}

/**
 * Runs up to `steps` decode steps of `rows` back to back, at `priority` on the compute thread, and returns how many
 * ran. Each step's tokens this rank sampled go to the coordinator at once (`emit`), so a client sees every token
 * as it is sampled. A sharded row's token is sampled by its owner rank alone and every rank of the session needs
 * it as the next step's input: after each step but the last, each owner broadcasts its sharded rows' tokens over
 * the data plane. A row leaves at a stop token or at the end of its budget; every rank of a session knows its
 * token and budget, so they all drop it at the same step and none decodes past its end, and the exchanges
 * (decodeRows' per layer, the tokens' per step) line up.
 */
export async function decodeBurst(ctx: WorkerContext, rows: readonly BurstRow[], steps: number, priority: number, emit: EmitPartial): Promise<number> {
  let live = rows.filter((row) => row.budget > 0);
  let ran = 0;
  for (let step = 0; step < steps && live.length > 0; step++) {
    if (ctx.signal?.aborted) throw new SeqparError('ERR_ABORTED', `a decode burst was cancelled at step ${step}`);
    // Tags of their own per step: the exchanges of step s + 1 never meet a late frame of step s.
    const stepCtx = { ...ctx, tagPrefix: `${ctx.tagPrefix}s${step}/` };
    const sampled = await withComputePriority(priority, () => decodeRows(stepCtx, live));
    const mine = live.flatMap((row, i): [number, number][] => (sampled[i] === undefined ? [] : [[row.id, sampled[i]]]));
    ran++;
    // The other ranks of a sharded row wait for its token to start the next step, the coordinator for none of
    // them: the peers' frames leave first (sending to a sleeping process is a socket write, 0.3-0.5 ms of CPU here).
    const sharing = step === steps - 1 ? undefined : shareTokens(ctx, stepCtx.tagPrefix, live, mine);
    if (mine.length > 0) emit({ step, tokens: mine } satisfies BurstTokens);
    if (!sharing) break;
    const known = new Map(mine);
    const frames = await sharing;
    for (const frame of frames) for (const [id, token] of frame.header.tokens as [number, number][]) known.set(id, token);
    live = live.filter((row) => {
      row.budget--;
      const token = known.get(row.id);
      if (row.budget === 0 || (token !== undefined && row.stop.has(token))) return false;
      if (token === undefined) throw new SeqparError('ERR_INTERNAL', `no rank shared session ${row.id}'s token at step ${step} of a burst`);
      row.token = token;
      row.position++;
      return true;
    });
  }
  return ran;
}

/**
 * Each owner of sharded rows sends the tokens it sampled (`mine`) to the other ranks and goes on; the rest wait for
 * them. Which rows need sharing, and who samples them, rests on the rows' budgets and positions: every rank of a
 * sharded row knows them. A sharded session spans the call's ranks in order (as decodeRows assumes), so its owner
 * is a transport rank.
 */
function shareTokens(ctx: WorkerContext, tagPrefix: string, live: readonly BurstRow[], mine: readonly [number, number][]): Promise<{ header: FrameHeader }[]> {
  const known = new Map(mine);
  const sharded = live.filter((row) => row.session.degree > 1 && row.budget > 1);
  const owners = [...new Set(sharded.map((row) => row.session.ownerOf(row.position)))];
  const shared = sharded.flatMap((row) => (known.has(row.id) ? [[row.id, known.get(row.id)!]] : []));
  return Promise.all(
    owners.map((owner) =>
      broadcast(ctx.transport, owner, `${tagPrefix}tokens${owner}`, owner === ctx.rank ? { header: { tokens: shared } } : undefined, {
        timeoutMs: ctx.timeoutMs,
        signal: ctx.signal,
      }),
    ),
  );
}
