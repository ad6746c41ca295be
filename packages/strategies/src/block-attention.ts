import { mergeInto, type BlockMask, type PartialAttention, type Span, type Tensor } from '@seqpar/core';
import { rowSlice } from './frames.js';
import type { RankContext } from './rank-context.js';

/**
 * Query rows per kernel call. The kernel's workspace grows with rows x keys x heads (ORT materialises a block's
 * scores), so cutting queries into chunks of fixed height keeps a rank's memory linear in the keys it holds
 * (Rabe & Staats, "Self-attention does not need O(n^2) memory", query chunking): a 16k-token causal request on
 * one worker peaked at 11 GiB as one call.
 */
const ROW_CHUNK = 512;
/** Causal triangles are halved down to this many rows; only these small diagonal pieces run the masked graph. */
const CAUSAL_BASE = 512;

/**
 * Attention of local queries `q` over `k`, `v` under `mask` (block-local indices, query 0 aligned with key 0),
 * folded into rows `rows` of `acc`.
 *
 * A causal triangle is cut recursively: top half (causal), bottom half against the top half's keys (every key
 * visible: j < mid <= i), bottom half (causal). Down to CAUSAL_BASE rows nearly all the visible scores are dense
 * rectangles, which run the kernel's fused unmasked path (about 1.4x faster per visible score than the masked
 * graph), and the rectangles come in a handful of shapes (sq/2, sq/4, ...), so few kernel sessions are built.
 */
export async function attendInto(ctx: RankContext, acc: PartialAttention, rows: Span, q: Tensor, k: Tensor, v: Tensor, mask: BlockMask, label: string): Promise<void> {
  const dense = async (query: Span, key: Span): Promise<void> => {
    for (let start = query.start; start < query.end; start += ROW_CHUNK) {
      const chunk = { start, end: Math.min(query.end, start + ROW_CHUNK) };
      await attendPiece(ctx, acc, rows, q, k, v, chunk, key, 'none', label);
    }
  };
  const keyEnd = (end: number): number => Math.min(end, k.shape[0]!);
  const causal = async (start: number, end: number): Promise<void> => {
    if (end - start <= CAUSAL_BASE) {
      if (keyEnd(end) > start) await attendPiece(ctx, acc, rows, q, k, v, { start, end }, { start, end: keyEnd(end) }, mask, label);
      return;
    }
    const mid = start + Math.ceil((end - start) / 2);
    await causal(start, mid);
    if (keyEnd(mid) > start) await dense({ start: mid, end }, { start, end: keyEnd(mid) });
    await causal(mid, end);
  };
  if (mask === 'none') await dense({ start: 0, end: q.shape[0]! }, { start: 0, end: k.shape[0]! });
  else await causal(0, q.shape[0]!);
}

/** One kernel call on query rows `query` and key rows `key` of the block, merged into the accumulator. */
async function attendPiece(
  ctx: RankContext,
  acc: PartialAttention,
  rows: Span,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  query: Span,
  key: Span,
  mask: BlockMask,
  label: string,
): Promise<void> {
  const partial = await ctx.recorder.time('compute', `attend ${mask} ${label}`, () =>
    ctx.kernel.attend(rowSlice(q, query.start, query.end), rowSlice(k, key.start, key.end), rowSlice(v, key.start, key.end), { kind: mask }),
  );
  await ctx.recorder.time('compute', 'merge', () => mergeInto(acc, partial, { start: rows.start + query.start, end: rows.start + query.end }));
}
