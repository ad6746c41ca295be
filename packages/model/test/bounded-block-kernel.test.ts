import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomTensor, referenceAttention, seededRandom, type MaskSpec } from '@seqpar/core';
import { createAttentionKernel, type AttentionKernel } from '@seqpar/kernels';
import { BoundedBlockKernel } from '../src/bounded-block-kernel.js';

let kernel: AttentionKernel;
beforeAll(async () => (kernel = await createAttentionKernel({ threads: 1 })));
afterAll(() => kernel.close());

const maxAbsDiff = (a: Float32Array, b: Float64Array | Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

describe('BoundedBlockKernel', () => {
  // Past 1024 x 16384 pairs a block is cut into pieces; 4200 x 4199 gives 5 query chunks, partial and ragged.
  it.each<[MaskSpec['kind'], number, number]>([
    ['causal-inclusive', 4200, 4200],
    ['causal-strict', 4200, 4199],
    ['none', 2100, 9000],
  ])('%s %i x %i pieces merge to the exact attention', async (kind, sq, sk) => {
    const random = seededRandom(sq + sk);
    const [q, k, v] = [randomTensor([sq, 2, 4], random), randomTensor([sk, 1, 4], random), randomTensor([sk, 1, 4], random)];
    const mask = { kind } as MaskSpec;
    const bounded = await new BoundedBlockKernel(kernel).attend(q, k, v, mask);
    const expected = referenceAttention(q, k, v, mask);
    expect(maxAbsDiff(bounded.out.data, expected.out)).toBeLessThan(1e-5);
    // A row that sees no key (row 0 under the strict mask) has lse ~ -1e30 in both: compare the others' values.
    const seen = (lse: ArrayLike<number>) => Float64Array.from(lse, (x) => (x < -1e29 ? -1 : x));
    expect(maxAbsDiff(Float32Array.from(seen(bounded.lse.data)), seen(expected.lse))).toBeLessThan(1e-4);
  });
});
