import type { LayoutKind, PartialAttention } from '@seqpar/core';
import { passKvAttention, type BlockRule } from './pass-kv.js';
import type { RankContext, RankInput } from './rank-context.js';
import { visibleBlocks } from './visible-blocks.js';

/** Rank r holds the contiguous tokens [floor(r·S/N), floor((r+1)·S/N)). */
export const RING_LAYOUT: LayoutKind = 'contiguous';

/**
 * Causal: source s < r is fully visible, s = r is the causal diagonal block, s > r lies entirely above the
 * diagonal and is skipped. That skip is why causal ring is unbalanced: rank N-1 computes N blocks while rank 0
 * computes one. Documents and a window skip more: only sources that share a document with the rank (and, with a
 * window, lie within W tokens of it) are computed.
 */
export const ringBlocks: BlockRule = (world, rank, source) => visibleBlocks(RING_LAYOUT, world, rank, source);

/** Ring Attention (Liu et al., 2023): KV blocks go round the ring of contiguous shards. */
export function ringAttention(ctx: RankContext, input: RankInput): Promise<PartialAttention> {
  return passKvAttention(ctx, input, ringBlocks);
}
