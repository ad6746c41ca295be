import { createPartial, mergeInto, mod, rowSlice, type PartialAttention, type Tensor } from '@seqpar/core';
import { withFrame } from '@seqpar/transport';
import { attendInto } from './block-attention.js';
import { fetchFrame, floatsOf, headerNumber, postFrame, waitComm } from './frames.js';
import { packPartial, unpackPartial } from './partial-frames.js';
import type { RankContext, RankInput } from './rank-context.js';
import { relayRing, type Relay } from './ring-relay.js';
import { worldOf, type RingWorld } from './visible-blocks.js';
import { ZIGZAG_LAYOUT, zigzagBlocks } from './zigzag.js';

/** TokenRing lays tokens out in zigzag chunks so that causal work stays balanced while queries travel. */
export const TOKEN_RING_LAYOUT = ZIGZAG_LAYOUT;

/**
 * TokenRing (Wang et al., 2024): KV stays put; queries travel one hop per step the other way round the ring
 * (rank r sends to r-1 and receives from r+1), so at step t rank r holds the queries of owner (r + t) mod N. The
 * partial (out, lse) it computes for those queries goes straight back to their owner over the mesh. Queries flow
 * one way and partial results the other, so both directions of every link carry traffic. The owner merges results
 * as they arrive. Which (owner, holder) pairs have work is zigzag's block rule with the holder's KV as the source;
 * queries that no holder further on works with are not sent on.
 */
export async function tokenRingAttention(ctx: RankContext, input: RankInput): Promise<PartialAttention> {
  const { rank, worldSize: n } = ctx;
  const [rows, hq, d] = input.q.shape as [number, number, number];
  const world = worldOf(input, n);
  const acc = createPartial(rows, hq, d);
  const partialsSent: Promise<void>[] = [];
  const queryRelay: Relay<Tensor> = {
    direction: -1,
    tag: 'q',
    pack: (queries) => ({ rows: queries.shape[0]!, values: queries.data }),
    unpack: (values, queryRows) => ({ data: values, shape: [queryRows, hq, d] }),
    used: (owner, step) => zigzagBlocks(world, owner, mod(owner - step, n)).length > 0,
  };
  await relayRing(ctx, queryRelay, input.q, async (step, queries) => {
    const owner = mod(rank + step, n);
    const blocks = zigzagBlocks(world, owner, rank);
    if (blocks.length === 0) return;
    // This rank's own queries fold straight into its result; a foreign owner's get a partial of their own.
    const partial = owner === rank ? acc : createPartial(queries.shape[0]!, hq, d);
    for (const { query, key, mask } of blocks) {
      await attendInto(
        ctx,
        partial,
        query,
        rowSlice(queries, query.start, query.end),
        rowSlice(input.k, key.start, key.end),
        rowSlice(input.v, key.start, key.end),
        mask,
        `q of ${owner}`,
      );
    }
    if (owner !== rank) partialsSent.push(postFrame(ctx, owner, `part/${step}`, { rows: queries.shape[0] }, packPartial(partial)));
  });
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
