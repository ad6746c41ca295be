import type { Span, Tensor } from '@seqpar/core';

/** Heads [h0, h1) of a [rows, H, D] tensor, copied out as [rows, h1-h0, D]. */
export function sliceHeads(t: Tensor, h0: number, h1: number): Float32Array {
  const [rows, heads, dim] = t.shape as [number, number, number];
  const width = (h1 - h0) * dim;
  const out = new Float32Array(rows * width);
  for (let row = 0; row < rows; row++) {
    const from = (row * heads + h0) * dim;
    out.set(t.data.subarray(from, from + width), row * width);
  }
  return out;
}

/** Writes src [rows, hN, D] into heads [h0, h0+hN) of dst [rows, H, D]. */
export function placeHeads(dst: Tensor, src: Float32Array, h0: number): void {
  const [rows, heads, dim] = dst.shape as [number, number, number];
  const width = src.length / rows;
  for (let row = 0; row < rows; row++) {
    dst.data.set(src.subarray(row * width, (row + 1) * width), (row * heads + h0) * dim);
  }
}

/** Columns `spans` of a row-major [H, S] matrix (an lse), copied out side by side as [H, columns in the spans]. */
export function sliceColumnSpans(matrix: Float32Array, heads: number, columns: number, spans: readonly Span[]): Float32Array {
  const width = spans.reduce((sum, span) => sum + span.end - span.start, 0);
  const out = new Float32Array(heads * width);
  for (let h = 0; h < heads; h++) {
    let offset = h * width;
    for (const { start, end } of spans) {
      out.set(matrix.subarray(h * columns + start, h * columns + end), offset);
      offset += end - start;
    }
  }
  return out;
}
