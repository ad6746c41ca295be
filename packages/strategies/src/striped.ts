import type { PartialAttention } from '@seqpar/core';
import { passKvAttention } from './pass-kv.js';
import type { RankContext, RankInput } from './rank-context.js';

/**
 * Striped Attention (Brandon et al., 2023): rank r holds tokens r, r+N, r+2N, ... so every step does about the
 * same causal work on every rank (up to 1.45x over ring in the paper). Local query i and key j of source s are
 * global tokens i·N + r and j·N + s, so the causal rule j·N + s <= i·N + r becomes j <= i when s <= r and j < i when
 * s > r: an inclusive or a strict triangle every step, never a skip.
 */
export function stripedAttention(ctx: RankContext, input: RankInput): Promise<PartialAttention> {
  return passKvAttention(ctx, input, 'striped');
}
