import { createPartial, mod, shardLength, type BlockMask, type LayoutKind, type PartialAttention, type Span } from '@seqpar/core';
import { attendInto } from './block-attention.js';
import { packKv, rowSlice, unpackKv, type KvBlock } from './frames.js';
import type { RankContext, RankInput } from './rank-context.js';
import { relayRing, type Relay } from './ring-relay.js';

/** One block of a pass-KV step: local query rows `query` against rows `key` of the KV in hand. */
export interface PlannedBlock {
  readonly query: Span;
  readonly key: Span;
  /** Block-local: query row i and key row j are the block's own indices from 0. */
  readonly mask: BlockMask;
}

/** What every rank knows of a request: S tokens over N ranks, causal or not. */
export interface RingWorld {
  readonly seq: number;
  readonly n: number;
  readonly causal: boolean;
}

/**
 * A layout's block rule: the blocks rank `rank` computes while it holds the KV of rank `source`. An empty list
 * means nothing of that KV is visible to its queries. Ranges are never empty. ring.ts, striped.ts and zigzag.ts
 * each define theirs; TokenRing runs zigzag's from the queries' owner's point of view.
 */
export type BlockRule = (world: RingWorld, rank: number, source: number) => PlannedBlock[];

/** All of `rank`'s local query rows and all of `source`'s key rows under `layout`: the block a rule cuts down. */
export function wholeBlock(layout: LayoutKind, { seq, n }: RingWorld, rank: number, source: number): { queries: Span; keys: Span } {
  return { queries: firstRows(shardLength(layout, seq, n, rank)), keys: firstRows(shardLength(layout, seq, n, source)) };
}

/** Rows [0, length). */
export const firstRows = (length: number): Span => ({ start: 0, end: length });

/** The block `query` x `key` under `mask`, or none when either range is empty (a rank that holds no tokens). */
export function block(query: Span, key: Span, mask: BlockMask): PlannedBlock[] {
  return query.end > query.start && key.end > key.start ? [{ query, key, mask }] : [];
}

/**
 * The loop that ring, striped and zigzag attention share (ring-flash-attention's forward): queries stay, KV blocks
 * travel one hop per step (rank r sends to r+1 and receives from r-1), so at step t rank r holds the KV of source
 * (r - t) mod N. The layout's `rule` says which blocks of (local Q, source KV) are computed under which mask. The
 * transfer for step t+1 is in flight while step t computes.
 */
export async function passKvAttention(ctx: RankContext, input: RankInput, rule: BlockRule): Promise<PartialAttention> {
  const { rank, worldSize: n } = ctx;
  const [rows, hq, d] = input.q.shape as [number, number, number];
  const hkv = input.k.shape[1]!;
  const world: RingWorld = { seq: input.seq, n, causal: input.causal };
  const acc = createPartial(rows, hq, d);
  const kvRelay: Relay<KvBlock> = {
    direction: 1,
    tag: 'kv',
    pack: (kv) => ({ rows: kv.k.shape[0]!, values: kv.packed }),
    unpack: (values, kvRows) => unpackKv(values, kvRows, hkv, d),
  };
  await relayRing(ctx, kvRelay, packKv(input.k, input.v), async (step, kv) => {
    const source = mod(rank - step, n);
    for (const { query, key, mask } of rule(world, rank, source)) {
      await attendInto(ctx, acc, query, rowSlice(input.q, query.start, query.end), rowSlice(kv.k, key.start, key.end), rowSlice(kv.v, key.start, key.end), mask, `src ${source}`);
    }
  });
  return acc;
}
