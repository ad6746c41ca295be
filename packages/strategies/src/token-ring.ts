import { createPartial, mergeInto, planBlocks, type PartialAttention, type Tensor } from '@seqpar/core';
import { attendInto } from './block-attention.js';
import { fetchFrame, floatsOf, headerNumber, mod, postFrame, rowSlice, waitComm } from './frames.js';
import { packPartial, unpackPartial } from './partial-frames.js';
import type { RankContext, RankInput } from './rank-context.js';

/** TokenRing lays tokens out in zigzag chunks so that causal work stays balanced while queries travel. */
export const TOKEN_RING_LAYOUT = 'zigzag';

/**
 * TokenRing (Wang et al., 2024): KV stays put; queries travel one hop per step the other way round the ring
 * (rank r sends to r-1 and receives from r+1), so at step t rank r holds the queries of owner (r + t) mod N. The
 * partial (out, lse) it computes for those queries goes straight back to their owner over the mesh. Queries flow
 * one way and partial results the other, so both directions of every link carry traffic. The owner merges results
 * as they arrive; which (owner, holder) pairs have work follows zigzag's block plan, seen from the owner.
 */
export async function tokenRingAttention(ctx: RankContext, input: RankInput): Promise<PartialAttention> {
  const { rank, worldSize: n } = ctx;
  const [rows, hq, d] = input.q.shape as [number, number, number];
  const acc = createPartial(rows, hq, d);
  const pendingSends: Promise<void>[] = [];
  let queries: Tensor = input.q;
  let releaseQueries: (() => void) | undefined;
  for (let step = 0; step < n; step++) {
    const owner = mod(rank + step, n);
    const isLast = step === n - 1;
    const sentQueries = isLast ? undefined : postFrame(ctx, mod(rank - 1, n), `q/${step}`, { rows: queries.shape[0] }, queries.data);
    const next = isLast ? undefined : fetchFrame(ctx, mod(rank + 1, n), `q/${step}`);
    // The owner sees this rank's KV at pass-KV step (owner - rank) mod N: the same blocks, computed here.
    const blocks = planBlocks(TOKEN_RING_LAYOUT, input.causal, input.seq, n, owner, mod(owner - rank, n));
    if (blocks.length > 0) {
      // This rank's own queries fold straight into its result; a foreign owner's get a partial of their own.
      const partial = owner === rank ? acc : createPartial(queries.shape[0]!, hq, d);
      for (const block of blocks) {
        const q = rowSlice(queries, block.query.start, block.query.end);
        const k = rowSlice(input.k, block.key.start, block.key.end);
        const v = rowSlice(input.v, block.key.start, block.key.end);
        await attendInto(ctx, partial, block.query, q, k, v, block.mask, `q of ${owner}`);
      }
      if (owner !== rank) pendingSends.push(postFrame(ctx, owner, `part/${step}`, { rows: queries.shape[0] }, packPartial(partial)));
    }
    if (next && sentQueries) {
      const frame = await waitComm(ctx, `q/${step}`, next);
      // Once the queries in hand are computed on and forwarded, their transport slot can go.
      await waitComm(ctx, `q/${step} sent`, sentQueries);
      releaseQueries?.();
      queries = { data: floatsOf(frame.payload), shape: [headerNumber(frame, 'rows'), hq, d] };
      releaseQueries = () => frame.release?.();
    }
  }
  releaseQueries?.();
  await mergeResultsFromHolders(ctx, input, acc);
  await waitComm(ctx, 'sends', Promise.all(pendingSends));
  return acc;
}

/** Receives the partials other ranks computed for this rank's queries: one from every holder with work to do. */
async function mergeResultsFromHolders(ctx: RankContext, input: RankInput, acc: PartialAttention): Promise<void> {
  const { rank, worldSize: n } = ctx;
  for (let step = 1; step < n; step++) {
    const holder = mod(rank - step, n);
    if (planBlocks(TOKEN_RING_LAYOUT, input.causal, input.seq, n, rank, step).length === 0) continue;
    const frame = await waitComm(ctx, `part ← ${holder}`, fetchFrame(ctx, holder, `part/${step}`));
    const partial = unpackPartial(floatsOf(frame.payload), headerNumber(frame, 'rows'), acc.out.shape[1]!, acc.out.shape[2]!);
    await ctx.recorder.time('compute', 'merge', () => mergeInto(acc, partial));
    frame.release?.();
  }
}
