import type { PartialAttention } from './attention-types.js';

/**
 * Rows `rows` of a batch's partial attention (out [B, H, D], lse [H, B]), in that order, copied into `into`
 * (out [n, H, D], lse [H, n]): the rows whose partials a decode step exchanges.
 */
export function gatherPartialRows(out: Float32Array, lse: Float32Array, rows: readonly number[], into: PartialAttention): void {
  const [n, heads, dim] = into.out.shape as [number, number, number];
  const [rowSize, batch] = [heads * dim, lse.length / heads];
  rows.forEach((i, j) => {
    into.out.data.set(out.subarray(i * rowSize, (i + 1) * rowSize), j * rowSize);
    for (let h = 0; h < heads; h++) into.lse.data[h * n + j] = lse[h * batch + i]!;
  });
}

/** The inverse: `from`'s rows back into rows `rows` of a batch's out, and of its lse where given. */
export function scatterPartialRows(from: PartialAttention, rows: readonly number[], out: Float32Array, lse?: Float32Array): void {
  const [n, heads, dim] = from.out.shape as [number, number, number];
  const rowSize = heads * dim;
  rows.forEach((i, j) => {
    out.set(from.out.data.subarray(j * rowSize, (j + 1) * rowSize), i * rowSize);
    if (!lse) return;
    const batch = lse.length / heads;
    for (let h = 0; h < heads; h++) lse[h * batch + i] = from.lse.data[h * n + j]!;
  });
}
