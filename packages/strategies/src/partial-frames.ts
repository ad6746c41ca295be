import type { PartialAttention } from '@seqpar/core';

/** A partial result travels as one frame: out [Sq, Hq, D] then lse [Hq, Sq], float32. */
export function packPartial(partial: PartialAttention): Float32Array {
  const packed = new Float32Array(partial.out.data.length + partial.lse.data.length);
  packed.set(partial.out.data, 0);
  packed.set(partial.lse.data, partial.out.data.length);
  return packed;
}

export function unpackPartial(packed: Float32Array, rows: number, heads: number, dim: number): PartialAttention {
  const outSize = rows * heads * dim;
  return {
    out: { data: packed.subarray(0, outSize), shape: [rows, heads, dim] },
    lse: { data: packed.subarray(outSize, outSize + heads * rows), shape: [heads, rows] },
  };
}
