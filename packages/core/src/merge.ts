import { MASKED_SCORE, type PartialAttention } from './attention-types.js';
import type { Span } from './layout.js';

/** An empty accumulator: out zeros [Sq, Hq, D], lse filled with MASKED_SCORE (nothing seen yet). */
export function createPartial(sq: number, hq: number, d: number): PartialAttention {
  return {
    out: { data: new Float32Array(sq * hq * d), shape: [sq, hq, d] },
    lse: { data: new Float32Array(hq * sq).fill(MASKED_SCORE), shape: [hq, sq] },
  };
}

/**
 * Folds `block` (covering query rows `rows` of `acc`, all of them by default) into `acc`, in place:
 *   out <- out - sigmoid(blk_lse - lse) * (out - blk_out),   lse <- lse - logsigmoid(lse - blk_lse)
 * which is lse' = log(e^lse + e^blk_lse) and out' = e^(lse-lse')·out + e^(blk_lse-lse')·blk_out written so that
 * nothing overflows: ring-flash-attention's update_out_and_lse, see
 * https://github.com/zhuzilin/ring-flash-attention/pull/34 for why this form is the stable one.
 * A fully masked side (lse = MASKED_SCORE) gets weight e^(-1e30) = 0 and drops out; two masked sides stay masked.
 */
export function mergeInto(acc: PartialAttention, block: PartialAttention, rows?: Span): void {
  const [sq, hq, d] = acc.out.shape as [number, number, number];
  const start = rows?.start ?? 0;
  const count = (rows?.end ?? sq) - start;
  if (block.out.shape[0] !== count || block.out.shape[1] !== hq || block.out.shape[2] !== d) {
    throw new RangeError(`block out [${block.out.shape}] does not cover ${count} rows of [${acc.out.shape}]`);
  }
  const out = acc.out.data;
  const lse = acc.lse.data;
  const blockOut = block.out.data;
  const blockLse = block.lse.data;
  for (let h = 0; h < hq; h++) {
    for (let i = 0; i < count; i++) {
      const accIndex = h * sq + start + i;
      const oldLse = lse[accIndex]!;
      const newLse = blockLse[h * count + i]!;
      // weight of the block: sigmoid(newLse - oldLse), computed on the side that cannot overflow
      const diff = newLse - oldLse;
      const blockWeight = diff >= 0 ? 1 / (1 + Math.exp(-diff)) : Math.exp(diff) / (1 + Math.exp(diff));
      lse[accIndex] = Math.max(oldLse, newLse) + Math.log1p(Math.exp(-Math.abs(diff)));
      if (blockWeight === 0) continue;
      const outBase = ((start + i) * hq + h) * d;
      const blockBase = (i * hq + h) * d;
      for (let c = 0; c < d; c++) {
        const current = out[outBase + c]!;
        out[outBase + c] = current - blockWeight * (current - blockOut[blockBase + c]!);
      }
    }
  }
}
