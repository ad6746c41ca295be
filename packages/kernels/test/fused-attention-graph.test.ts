import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';
import { randomTensor, referenceAttention, seededRandom, type Tensor } from '@seqpar/core';
import { buildFusedAttentionGraph, createAttentionKernel, type AttentionKernel } from '../src/index.js';

let kernel: AttentionKernel;
beforeAll(async () => {
  kernel = await createAttentionKernel({ threads: 1 });
});
afterAll(async () => kernel?.close());

async function runFused(q: Tensor, k: Tensor, v: Tensor): Promise<Record<string, Float32Array>> {
  const [sq, hq, d] = q.shape as [number, number, number];
  const [sk, hkv] = k.shape as [number, number];
  const session = await ort.InferenceSession.create(buildFusedAttentionGraph({ sq, sk, hq, hkv, d, mask: 'none' }));
  const tensor = (t: Tensor) => new ort.Tensor('float32', t.data, t.shape as number[]);
  const results = await session.run({ q: tensor(q), k: tensor(k), v: tensor(v) });
  await session.release();
  return Object.fromEntries(Object.entries(results).map(([name, t]) => [name, t.data as Float32Array]));
}

function maxError(got: Float32Array, expected: Float64Array): number {
  return got.reduce((max, x, i) => Math.max(max, Math.abs(x - expected[i]!)), 0);
}

/** One key far more aligned with every query than the rest: the row max sits ~7000 above the mean score. Big enough that the exact graph tiles it. */
function outlierBlock(): [Tensor, Tensor, Tensor] {
  const random = seededRandom(9);
  const [s, h, d] = [300, 2, 16];
  const q = randomTensor([s, h, d], random);
  const k = randomTensor([s, h, d], random);
  for (let i = 0; i < s * h; i++) q.data[i * d] = 100;
  for (let j = 0; j < h; j++) k.data[(7 * h + j) * d] = 300;
  return [q, k, randomTensor([s, h, d], random)];
}

describe('fused attention graph (MultiHeadAttention with a reference key)', () => {
  it.each([
    [257, 300, 4, 4, 64],
    [33, 1000, 6, 2, 128],
    [1, 3, 6, 3, 8],
  ])('matches the fp64 reference without fallback: Sq %i, Sk %i, Hq %i, Hkv %i, D %i', async (sq, sk, hq, hkv, d) => {
    const random = seededRandom(sq + sk);
    const q = randomTensor([sq, hq, d], random, 2);
    const k = randomTensor([sk, hkv, d], random, 2);
    const v = randomTensor([sk, hkv, d], random);
    const got = await runFused(q, k, v);
    const expected = referenceAttention(q, k, v, { kind: 'none' });
    expect(got['fallback']![0]).toBe(0);
    expect(maxError(got['out']!, expected.out)).toBeLessThanOrEqual(1e-5);
    expect(maxError(got['lse']!, expected.lse)).toBeLessThanOrEqual(1e-4);
  });

  it('asks for the exact graph when the row max is far above the mean score, and the kernel then stays exact', async () => {
    const [q, k, v] = outlierBlock();
    expect((await runFused(q, k, v))['fallback']![0]).toBe(1);
    const got = await kernel.attend(q, k, v, { kind: 'none' });
    const expected = referenceAttention(q, k, v, { kind: 'none' });
    expect(Math.max(...expected.lse)).toBeGreaterThan(1000);
    expect(maxError(got.out.data, expected.out)).toBeLessThanOrEqual(1e-5);
    expect(maxError(got.lse.data, expected.lse)).toBeLessThanOrEqual(1e-4 * Math.max(...expected.lse));
  });

  it('builds only the unmasked case', () => {
    expect(() => buildFusedAttentionGraph({ sq: 2, sk: 2, hq: 1, hkv: 1, d: 8, mask: 'causal-inclusive' })).toThrow(/mask/);
  });
});
