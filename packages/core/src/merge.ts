import { MASKED_SCORE, type PartialAttention } from './attention-types.js';
import type { Span } from './layout.js';

/**
 * An lse at or below this saw no key: MASKED_SCORE itself, or MASKED_SCORE plus a log of a key count after a
 * kernel's max + log(sum). Real lse values are bounded by the largest score plus log(Sk), nowhere near it.
 */
const MASKED_LSE_LIMIT = MASKED_SCORE / 10;

export function isMaskedLse(lse: number): boolean {
  return lse <= MASKED_LSE_LIMIT;
}

/** An empty accumulator: out zeros [Sq, Hq, D], lse filled with MASKED_SCORE (nothing seen yet). */
export function createPartial(sq: number, hq: number, d: number): PartialAttention {
  return {
    out: { data: new Float32Array(sq * hq * d), shape: [sq, hq, d] },
    lse: { data: new Float32Array(hq * sq).fill(MASKED_SCORE), shape: [hq, sq] },
  };
}

/** True when every accumulator row in [start, start + count) is masked and no block row is. */
function takesBlockWhole(lse: Float32Array, blockLse: Float32Array, sq: number, start: number, count: number, hq: number): boolean {
  for (let h = 0; h < hq; h++) {
    for (let i = 0; i < count; i++) if (!isMaskedLse(lse[h * sq + start + i]!) || isMaskedLse(blockLse[h * count + i]!)) return false;
  }
  return true;
}

/**
 * Folds `block` (covering query rows `rows` of `acc`, all of them by default) into `acc`, in place:
 *   out <- out - sigmoid(blk_lse - lse) * (out - blk_out),   lse <- lse - logsigmoid(lse - blk_lse)
 * which is lse' = log(e^lse + e^blk_lse) and out' = e^(lse-lse')·out + e^(blk_lse-lse')·blk_out written so that
 * nothing overflows: ring-flash-attention's update_out_and_lse, see
 * https://github.com/zhuzilin/ring-flash-attention/pull/34 for why this form is the stable one. Storage is float32,
 * each element is computed in double.
 * A fully masked side (lse <= MASKED_SCORE / 10) drops out exactly: a masked block changes nothing, and a block
 * merged into a masked row replaces it, so masked garbage in `out` never leaks and two masked sides stay masked
 * with the accumulator's out (zeros from `createPartial`).
 */
export function mergeInto(acc: PartialAttention, block: PartialAttention, rows?: Span): void {
  const [sq, hq, d] = acc.out.shape as [number, number, number];
  const start = rows?.start ?? 0;
  const end = rows?.end ?? sq;
  const count = end - start;
  if (start < 0 || end > sq || count < 0) throw new RangeError(`rows [${start}, ${end}) are outside the ${sq} rows of the accumulator`);
  if (block.out.shape[0] !== count || block.out.shape[1] !== hq || block.out.shape[2] !== d || block.lse.data.length !== hq * count) {
    throw new RangeError(`block out [${block.out.shape}] / lse [${block.lse.shape}] do not cover ${count} rows of [${acc.out.shape}]`);
  }
  const out = acc.out.data;
  const lse = acc.lse.data;
  const blockOut = block.out.data;
  const blockLse = block.lse.data;
  if (takesBlockWhole(lse, blockLse, sq, start, count, hq)) {
    // Rows nothing reached yet, all reached by the block: the merge is the block, so copy it in bulk (the first
    // piece of every row range merges so; element by element it cost ~7% of a 16k-token single-worker request).
    out.set(blockOut.subarray(0, count * hq * d), start * hq * d);
    for (let h = 0; h < hq; h++) lse.set(blockLse.subarray(h * count, (h + 1) * count), h * sq + start);
    return;
  }
  // Rows outer, heads inner: out and blockOut are then read in memory order (measured 25 -> 15 ms per 8k rows).
  for (let i = 0; i < count; i++) {
    for (let h = 0; h < hq; h++) {
      const accIndex = h * sq + start + i;
      const oldLse = lse[accIndex]!;
      const newLse = blockLse[h * count + i]!;
      if (isMaskedLse(newLse)) continue;
      // A masked accumulator row takes the block as is; otherwise the block's weight is sigmoid(newLse - oldLse),
      // computed on the side whose exp cannot overflow. Weights that round to 0 or 1 keep a side exactly.
      const accMasked = isMaskedLse(oldLse);
      const diff = newLse - oldLse;
      const blockWeight = accMasked ? 1 : diff >= 0 ? 1 / (1 + Math.exp(-diff)) : Math.exp(diff) / (1 + Math.exp(diff));
      lse[accIndex] = accMasked ? newLse : Math.max(oldLse, newLse) + Math.log1p(Math.exp(-Math.abs(diff)));
      if (blockWeight === 0) continue;
      const outBase = ((start + i) * hq + h) * d;
      const blockBase = (i * hq + h) * d;
      for (let c = 0; c < d; c++) {
        const current = out[outBase + c]!;
        const incoming = blockOut[blockBase + c]!;
        out[outBase + c] = blockWeight === 1 ? incoming : current - blockWeight * (current - incoming);
      }
    }
  }
}
