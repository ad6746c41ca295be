import { randomTensor, seededRandom, type Tensor } from '@seqpar/core';

export interface QkvShape {
  readonly seq: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
}

/** Seeded random q [S, Hq, D], k and v [S, Hkv, D]: the same tensors for `attention --random` and `make-qkv`. */
export function randomQkv(shape: QkvShape, seed: number): [Tensor, Tensor, Tensor] {
  const random = seededRandom(seed);
  const { seq, heads, kvHeads, headDim } = shape;
  return [randomTensor([seq, heads, headDim], random), randomTensor([seq, kvHeads, headDim], random), randomTensor([seq, kvHeads, headDim], random)];
}
