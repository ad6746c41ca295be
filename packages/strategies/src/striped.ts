import type { LayoutKind, PartialAttention } from '@seqpar/core';
import { passKvAttention, type BlockRule } from './pass-kv.js';
import type { RankContext, RankInput } from './rank-context.js';
import { visibleBlocks } from './visible-blocks.js';

/** Rank r holds tokens r, r+N, r+2N, ... */
export const STRIPED_LAYOUT: LayoutKind = 'striped';

/**
 * Local query i and key j of source s are global tokens i·N + r and j·N + s, so the causal rule j·N + s <= i·N + r
 * becomes j <= i when s <= r and j < i when s > r: an inclusive or a strict triangle every step, never a skip. A
 * window of W becomes a band of about W/N local rows, and each document a run of local rows on every rank.
 */
export const stripedBlocks: BlockRule = (world, rank, source) => visibleBlocks(STRIPED_LAYOUT, world, rank, source);

/**
 * Striped Attention (Brandon et al., 2023): with tokens dealt round-robin every step does about the same causal
 * work on every rank (up to 1.45x over ring in the paper).
 */
export function stripedAttention(ctx: RankContext, input: RankInput): Promise<PartialAttention> {
  return passKvAttention(ctx, input, stripedBlocks);
}
