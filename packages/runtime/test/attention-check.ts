import { randomTensor, referenceAttention, seededRandom, type SequenceMask, type Tensor } from '@seqpar/core';
import { expect } from 'vitest';

export interface Problem {
  q: Tensor;
  k: Tensor;
  v: Tensor;
}

export function problem(seq: number, hq = 2, hkv = 1, dim = 16, seed = seq): Problem {
  const random = seededRandom(seed);
  return { q: randomTensor([seq, hq, dim], random), k: randomTensor([seq, hkv, dim], random), v: randomTensor([seq, hkv, dim], random) };
}

/** The cluster's out and lse match the fp64 reference (causal or not, or under packed documents and a window). */
export function expectExact(p: Problem, result: { out: Tensor; lse: Tensor }, mask: boolean | SequenceMask): void {
  const reference = referenceAttention(p.q, p.k, p.v, { kind: 'sequence', mask: typeof mask === 'boolean' ? { causal: mask } : mask });
  expect(result.out.shape).toEqual(p.q.shape);
  expect(maxDiff(result.out.data, reference.out)).toBeLessThan(1e-4);
  expect(maxDiff(result.lse.data, reference.lse)).toBeLessThan(1e-4);
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}
