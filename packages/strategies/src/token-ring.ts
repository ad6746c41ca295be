import { createPartial, mergeInto, mod, type PartialAttention, type Tensor } from '@seqpar/core';
import { discardFrame, withFrame } from '@seqpar/transport';
import { attendInto } from './block-attention.js';
import { fetchFrame, floatsOf, headerNumber, postFrame, rowSlice, waitComm } from './frames.js';
import { packPartial, unpackPartial } from './partial-frames.js';
import type { RingWorld } from './pass-kv.js';
import type { RankContext, RankInput } from './rank-context.js';
import { ZIGZAG_LAYOUT, zigzagBlocks } from './zigzag.js';

/** TokenRing lays tokens out in zigzag chunks so that causal work stays balanced while queries travel. */
export const TOKEN_RING_LAYOUT = ZIGZAG_LAYOUT;

/**
 * TokenRing (Wang et al., 2024): KV stays put; queries travel one hop per step the other way round the ring
 * (rank r sends to r-1 and receives from r+1), so at step t rank r holds the queries of owner (r + t) mod N. The
 * partial (out, lse) it computes for those queries goes straight back to their owner over the mesh. Queries flow
 * one way and partial results the other, so both directions of every link carry traffic. The owner merges results
 * as they arrive. Which (owner, holder) pairs have work is zigzag's block rule with the holder's KV as the source.
 */
export async function tokenRingAttention(ctx: RankContext, input: RankInput): Promise<PartialAttention> {
  const { rank, worldSize: n } = ctx;
  const [rows, hq, d] = input.q.shape as [number, number, number];
  const world: RingWorld = { seq: input.seq, n, causal: input.causal };
  const acc = createPartial(rows, hq, d);
  const partialsSent: Promise<void>[] = [];

  /** Step t with the queries of owner (rank + t) mod N in hand: forwards them, computes, returns once forwarded. */
  const step = async (t: number, queries: Tensor): Promise<void> => {
    const forwarded = t < n - 1 ? postFrame(ctx, mod(rank - 1, n), `q/${t}`, { rows: queries.shape[0] }, queries.data) : undefined;
    try {
      const owner = mod(rank + t, n);
      const blocks = zigzagBlocks(world, owner, rank);
      if (blocks.length === 0) return;
      // This rank's own queries fold straight into its result; a foreign owner's get a partial of their own.
      const partial = owner === rank ? acc : createPartial(queries.shape[0]!, hq, d);
      for (const { query, key, mask } of blocks) {
        await attendInto(ctx, partial, query, rowSlice(queries, query.start, query.end), rowSlice(input.k, key.start, key.end), rowSlice(input.v, key.start, key.end), mask, `q of ${owner}`);
      }
      if (owner !== rank) partialsSent.push(postFrame(ctx, owner, `part/${t}`, { rows: queries.shape[0] }, packPartial(partial)));
    } finally {
      // Received queries are a view of the sender's slot: they must outlive the forward that copies them out.
      if (forwarded) await waitComm(ctx, `q/${t} sent`, forwarded);
    }
  };

  // Step t+1's queries are received while step t computes; each received set lives for exactly its own step.
  const receive = (t: number) => (t < n - 1 ? fetchFrame(ctx, mod(rank + 1, n), `q/${t}`) : undefined);
  let next = receive(0);
  try {
    await step(0, input.q);
    for (let t = 1; t < n; t++) {
      const arriving = next!;
      next = receive(t);
      await withFrame(waitComm(ctx, `q/${t - 1}`, arriving), (frame) => step(t, { data: floatsOf(frame.payload), shape: [headerNumber(frame, 'rows'), hq, d] }));
    }
  } catch (error) {
    if (next) discardFrame(next);
    throw error;
  }
  await mergeResultsFromHolders(ctx, world, acc);
  await waitComm(ctx, 'sends', Promise.all(partialsSent));
  return acc;
}

/** Receives the partials other ranks computed for this rank's queries: one from every holder with work to do. */
async function mergeResultsFromHolders(ctx: RankContext, world: RingWorld, acc: PartialAttention): Promise<void> {
  const { rank, worldSize: n } = ctx;
  const [heads, dim] = [acc.out.shape[1]!, acc.out.shape[2]!];
  for (let step = 1; step < n; step++) {
    const holder = mod(rank - step, n);
    if (zigzagBlocks(world, rank, holder).length === 0) continue;
    await withFrame(waitComm(ctx, `part ← ${holder}`, fetchFrame(ctx, holder, `part/${step}`)), (frame) => {
      const partial = unpackPartial(floatsOf(frame.payload), headerNumber(frame, 'rows'), heads, dim);
      return ctx.recorder.time('compute', 'merge', () => mergeInto(acc, partial));
    });
  }
}
