import type { PartialAttention } from '@seqpar/core';
import { passKvAttention } from './pass-kv.js';
import type { RankContext, RankInput } from './rank-context.js';

/**
 * Zigzag ring attention (ring-flash-attention's zigzag_ring_flash_attn): the sequence is cut into 2N chunks and
 * rank r holds chunks r and 2N-1-r, one early and one late, which balances causal work. Step 0 is the local causal
 * block; KV from an earlier rank (s < r) is seen by all local queries but only its first chunk is early enough;
 * KV from a later rank (s > r) is seen in full, but only by the local second (late) chunk. Each step computes half
 * the block of a dense step, as dense unmasked matmuls.
 */
export function zigzagAttention(ctx: RankContext, input: RankInput): Promise<PartialAttention> {
  return passKvAttention(ctx, input, 'zigzag');
}
