import { elementCount, type Tensor } from './tensor.js';

/** mulberry32: a tiny seeded PRNG, so `--seed K` and tests reproduce the same tensors everywhere. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A tensor of uniform values in [-scale, scale). */
export function randomTensor(shape: readonly number[], random: () => number, scale = 1): Tensor {
  const data = new Float32Array(elementCount(shape));
  for (let i = 0; i < data.length; i++) data[i] = (random() * 2 - 1) * scale;
  return { data, shape: [...shape] };
}
