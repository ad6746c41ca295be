import type { PartialAttention } from '@seqpar/core';

/** A partial result travels as one frame: out [Sq, Hq, D] then lse [Hq, Sq], float32. */
export function packPartial(partial: PartialAttention): Float32Array {
  return packInto(new Float32Array(partial.out.data.length + partial.lse.data.length), partial);
}

/** Frame buffers no send holds, by length. */
const spare = new Map<number, Float32Array[]>();

/**
 * Packs `partial` into a reused buffer that is the caller's while `send` runs (a send resolves once the transport
 * took the bytes, so the buffer is free again after it). A decode step sends a partial per layer: a fresh buffer
 * each time was steady garbage per token. Concurrent callers get buffers of their own.
 */
export async function sendPackedPartial<T>(partial: PartialAttention, send: (packed: Float32Array) => Promise<T>): Promise<T> {
  const length = partial.out.data.length + partial.lse.data.length;
  let free = spare.get(length);
  if (!free) spare.set(length, (free = []));
  const packed = packInto(free.pop() ?? new Float32Array(length), partial);
  try {
    return await send(packed);
  } finally {
    free.push(packed);
  }
}

function packInto(packed: Float32Array, partial: PartialAttention): Float32Array {
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
