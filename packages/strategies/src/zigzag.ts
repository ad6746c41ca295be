import { zigzagChunks, type LayoutKind, type PartialAttention, type Span } from '@seqpar/core';
import { block, firstRows, passKvAttention, wholeBlock, type BlockRule } from './pass-kv.js';
import type { RankContext, RankInput } from './rank-context.js';

/** The sequence is cut into 2N chunks; rank r holds chunk r (early) and chunk 2N-1-r (late), in that order. */
export const ZIGZAG_LAYOUT: LayoutKind = 'zigzag';

const lengthOf = (span: Span): number => span.end - span.start;

/**
 * Causal: the local block (s = r) is a causal triangle. KV from an earlier rank (s < r) is seen by all local
 * queries, but only its early chunk is early enough. KV from a later rank (s > r) is seen in full, but only by the
 * local late chunk. So every off-diagonal step computes half a block, unmasked.
 */
export const zigzagBlocks: BlockRule = (world, rank, source) => {
  const { queries, keys } = wholeBlock(ZIGZAG_LAYOUT, world, rank, source);
  if (!world.causal) return block(queries, keys, 'none');
  if (source === rank) return block(queries, keys, 'causal-inclusive');
  if (source < rank) return block(queries, firstRows(lengthOf(zigzagChunks(world.seq, world.n, source).first)), 'none');
  return block({ start: lengthOf(zigzagChunks(world.seq, world.n, rank).first), end: queries.end }, keys, 'none');
};

/**
 * Zigzag ring attention (ring-flash-attention's zigzag_ring_flash_attn): holding one early and one late chunk
 * balances causal work across ranks.
 */
export function zigzagAttention(ctx: RankContext, input: RankInput): Promise<PartialAttention> {
  return passKvAttention(ctx, input, zigzagBlocks);
}
