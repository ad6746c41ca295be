import type { PartialAttention } from '@seqpar/core';
import { passKvAttention } from './pass-kv.js';
import type { RankContext, RankInput } from './rank-context.js';

/**
 * Ring Attention (Liu et al., 2023): rank r holds the contiguous tokens [r·S/N, (r+1)·S/N) and KV blocks go
 * round the ring. Causal: source s < r is fully visible, s = r is the causal diagonal block, s > r lies entirely
 * above the diagonal and is skipped. That skip is why causal ring is unbalanced: rank N-1 computes N blocks while
 * rank 0 computes one.
 */
export function ringAttention(ctx: RankContext, input: RankInput): Promise<PartialAttention> {
  return passKvAttention(ctx, input, 'contiguous');
}
