import { createPartial, mod, rowSlice, type PartialAttention } from '@seqpar/core';
import { attendInto } from './block-attention.js';
import { packKv, unpackKv, type KvBlock } from './frames.js';
import type { RankContext, RankInput } from './rank-context.js';
import { relayRing, type Relay } from './ring-relay.js';
import { worldOf, type PlannedBlock, type RingWorld } from './visible-blocks.js';

/**
 * A layout's block rule: the blocks rank `rank` computes while it holds the KV of rank `source`. An empty list
 * means nothing of that KV is visible to its queries. Ranges are never empty. ring.ts, striped.ts and zigzag.ts
 * each define theirs; TokenRing runs zigzag's from the queries' owner's point of view.
 */
export type BlockRule = (world: RingWorld, rank: number, source: number) => PlannedBlock[];

/**
 * The loop that ring, striped and zigzag attention share (ring-flash-attention's forward): queries stay, KV blocks
 * travel one hop per step (rank r sends to r+1 and receives from r-1), so at step t rank r holds the KV of source
 * (r - t) mod N. The layout's `rule` says which blocks of (local Q, source KV) are computed under which mask; KV
 * that no rank further on needs is not sent on. The transfer for step t+1 is in flight while step t computes.
 */
export async function passKvAttention(ctx: RankContext, input: RankInput, rule: BlockRule): Promise<PartialAttention> {
  const { rank, worldSize: n } = ctx;
  const [rows, hq, d] = input.q.shape as [number, number, number];
  const hkv = input.k.shape[1]!;
  const world = worldOf(input, n);
  const acc = (ctx.createPartial ?? createPartial)(rows, hq, d);
  const kvRelay: Relay<KvBlock> = {
    direction: 1,
    tag: 'kv',
    pack: (kv) => ({ rows: kv.k.shape[0]!, values: kv.packed }),
    unpack: (values, kvRows) => unpackKv(values, kvRows, hkv, d),
    used: (source, step) => rule(world, mod(source + step, n), source).length > 0,
  };
  await relayRing(ctx, kvRelay, packKv(input.k, input.v), async (step, kv) => {
    const source = mod(rank - step, n);
    for (const { query, key, mask } of rule(world, rank, source)) {
      await attendInto(ctx, acc, query, rowSlice(input.q, query.start, query.end), rowSlice(kv.k, key.start, key.end), rowSlice(kv.v, key.start, key.end), mask, `src ${source}`);
    }
  });
  return acc;
}
