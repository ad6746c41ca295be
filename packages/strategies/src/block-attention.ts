import { mergeInto, type BlockMask, type PartialAttention, type Span, type Tensor } from '@seqpar/core';
import { rowSlice } from './frames.js';
import type { RankContext } from './rank-context.js';

/**
 * Query rows per kernel call. The kernel's workspace grows with rows x keys x heads (ORT materialises a block's
 * scores), so cutting queries into chunks of fixed height keeps a rank's memory linear in the keys it holds
 * (Rabe & Staats, "Self-attention does not need O(n^2) memory", query chunking): a 16k-token causal request on
 * one worker peaked at 11 GiB as one call, 0.7 GiB in chunks.
 */
const ROW_CHUNK = 512;
/** Causal triangles are halved down to this many rows; only these small diagonal pieces run the masked graph. */
const CAUSAL_BASE = 512;
/**
 * Keys per piece at most: 512 x 32768 pairs run at the fused op's full speed (~65 GFLOP/s measured at 1024 x
 * 16384) with bounded scores, so a rank holding more keys than that still never builds one huge block.
 */
const MAX_KEYS = 32768;

/** One kernel call: block-local query rows and key rows under a mask. */
interface Piece {
  readonly query: Span;
  readonly key: Span;
  readonly mask: BlockMask;
}

/**
 * Attention of local queries `q` over `k`, `v` under `mask` (block-local indices, query 0 aligned with key 0),
 * folded into rows `rows` of `acc`, one kernel call per piece. Each piece merges before the next starts: merging
 * while the next piece computes was measured 5-10% slower with two workers on two cores (a third busy thread).
 */
export async function attendInto(ctx: RankContext, acc: PartialAttention, rows: Span, q: Tensor, k: Tensor, v: Tensor, mask: BlockMask, label: string): Promise<void> {
  for (const { query, key, mask: kind } of planPieces(q.shape[0]!, k.shape[0]!, mask)) {
    const partial = await ctx.recorder.time('compute', `attend ${kind} ${label}`, () =>
      ctx.kernel.attend(rowSlice(q, query.start, query.end), rowSlice(k, key.start, key.end), rowSlice(v, key.start, key.end), { kind }),
    );
    await ctx.recorder.time('compute', 'merge', () => mergeInto(acc, partial, { start: rows.start + query.start, end: rows.start + query.end }));
  }
}

/**
 * The kernel calls of one block (none when it has no queries or keys: the accumulator already says "nothing
 * seen"). A causal triangle is cut recursively: top half (causal), bottom half against the top half's keys (all
 * visible: j < mid <= i), bottom half (causal). Down to CAUSAL_BASE rows nearly all visible scores lie in dense
 * rectangles, which run the kernel's fused unmasked path (about 1.4x faster per
 * visible score than the masked graph), and the rectangles come in a few shapes (sq/2, sq/4, ...), so few kernel
 * sessions are built. Dense rectangles go in ROW_CHUNK-row pieces, and keys per piece stop at the block's own
 * query count (and MAX_KEYS), so a rank's workspace follows its share of the queries (S/N), not the length of the
 * KV it is handed (zigzag's late chunk meets both of a source's chunks at once).
 */
export function planPieces(sq: number, sk: number, mask: BlockMask): Piece[] {
  const pieces: Piece[] = [];
  const maxKeys = Math.min(Math.max(CAUSAL_BASE, sq), MAX_KEYS);
  const dense = (query: Span, key: Span): void => {
    for (let start = query.start; start < query.end; start += ROW_CHUNK) {
      for (let keyStart = key.start; keyStart < key.end; keyStart += maxKeys) {
        pieces.push({ query: { start, end: Math.min(query.end, start + ROW_CHUNK) }, key: { start: keyStart, end: Math.min(key.end, keyStart + maxKeys) }, mask: 'none' });
      }
    }
  };
  const keyEnd = (end: number): number => Math.min(end, sk);
  const causal = (start: number, end: number): void => {
    if (end - start <= CAUSAL_BASE) {
      if (keyEnd(end) > start) pieces.push({ query: { start, end }, key: { start, end: keyEnd(end) }, mask });
      return;
    }
    const mid = start + Math.ceil((end - start) / 2);
    causal(start, mid);
    if (keyEnd(mid) > start) dense({ start: mid, end }, { start, end: keyEnd(mid) });
    causal(mid, end);
  };
  if (mask === 'none') dense({ start: 0, end: sq }, { start: 0, end: sk });
  else causal(0, sq);
  return pieces;
}
