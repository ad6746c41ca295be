import type { LayoutKind, PartialAttention } from '@seqpar/core';
import { passKvAttention, type BlockRule } from './pass-kv.js';
import type { RankContext, RankInput } from './rank-context.js';
import { visibleBlocks } from './visible-blocks.js';

/**
 * The sequence is cut into 2N chunks; rank r holds chunk r (early) and chunk 2N-1-r (late), in that order. Packed
 * documents are balanced one by one: short ones dealt whole, long ones cut zigzag-wise (core's document-zigzag.ts).
 */
export const ZIGZAG_LAYOUT: LayoutKind = 'zigzag';

/**
 * Causal: the local block (s = r) is a causal triangle. KV from an earlier rank (s < r) is seen by all local
 * queries, but only its early chunk is early enough. KV from a later rank (s > r) is seen in full, but only by the
 * local late chunk. So every off-diagonal step computes half a block, unmasked. Documents dealt whole stay on their
 * rank: their KV travels nowhere.
 */
export const zigzagBlocks: BlockRule = (world, rank, source) => visibleBlocks(ZIGZAG_LAYOUT, world, rank, source);

/**
 * Zigzag ring attention (ring-flash-attention's zigzag_ring_flash_attn): holding one early and one late chunk
 * balances causal work across ranks.
 */
export function zigzagAttention(ctx: RankContext, input: RankInput): Promise<PartialAttention> {
  return passKvAttention(ctx, input, zigzagBlocks);
}
