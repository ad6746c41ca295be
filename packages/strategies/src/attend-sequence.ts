import { rowSlice, type PartialAttention, type SequenceMask, type Tensor } from '@seqpar/core';
import { attendInto } from './block-attention.js';
import type { RankContext } from './rank-context.js';
import { visibleBlocks, worldOf } from './visible-blocks.js';

/**
 * Attention of a whole sequence's q over its own k and v (all S rows in order) under `mask`, folded into `acc`:
 * one block per document, each cut to its visible band. Single-device attention and Ulysses' per-head attention.
 */
export async function attendSequence(ctx: RankContext, acc: PartialAttention, mask: SequenceMask, q: Tensor, k: Tensor, v: Tensor, label: string): Promise<void> {
  for (const { query, key, mask: blockMask } of visibleBlocks('contiguous', worldOf({ ...mask, seq: q.shape[0]! }, 1), 0, 0)) {
    await attendInto(ctx, acc, query, rowSlice(q, query.start, query.end), rowSlice(k, key.start, key.end), rowSlice(v, key.start, key.end), blockMask, label);
  }
}
