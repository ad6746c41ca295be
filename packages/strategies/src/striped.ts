import type { LayoutKind, PartialAttention } from '@seqpar/core';
import { block, passKvAttention, wholeBlock, type BlockRule } from './pass-kv.js';
import type { RankContext, RankInput } from './rank-context.js';

/** Rank r holds tokens r, r+N, r+2N, ... */
export const STRIPED_LAYOUT: LayoutKind = 'striped';

/**
 * Local query i and key j of source s are global tokens i·N + r and j·N + s, so the causal rule j·N + s <= i·N + r
 * becomes j <= i when s <= r and j < i when s > r: an inclusive or a strict triangle every step, never a skip.
 */
export const stripedBlocks: BlockRule = (world, rank, source) => {
  const { queries, keys } = wholeBlock(STRIPED_LAYOUT, world, rank, source);
  if (!world.causal) return block(queries, keys, 'none');
  return block(queries, keys, source <= rank ? 'causal-inclusive' : 'causal-strict');
};

/**
 * Striped Attention (Brandon et al., 2023): with tokens dealt round-robin every step does about the same causal
 * work on every rank (up to 1.45x over ring in the paper).
 */
export function stripedAttention(ctx: RankContext, input: RankInput): Promise<PartialAttention> {
  return passKvAttention(ctx, input, stripedBlocks);
}
