import { describe, expect, it } from 'vitest';
import { referenceAttention, tensor } from '../src/index.js';

describe('referenceAttention', () => {
  it('returns the value row when a single key is visible', () => {
    const q = tensor(new Float32Array([1, 0]), [1, 1, 2]);
    const k = tensor(new Float32Array([0.5, 0.5]), [1, 1, 2]);
    const v = tensor(new Float32Array([3, -2]), [1, 1, 2]);
    const { out, lse } = referenceAttention(q, k, v, { kind: 'none' });
    expect(Array.from(out)).toEqual([3, -2]);
    expect(lse[0]).toBeCloseTo(0.5 / Math.sqrt(2), 12);
  });

  it('averages values with equal scores and rejects heads that do not divide', () => {
    const q = tensor(new Float32Array(2), [1, 1, 2]);
    const k = tensor(new Float32Array(4), [2, 1, 2]);
    const v = tensor(new Float32Array([1, 2, 3, 4]), [2, 1, 2]);
    expect(Array.from(referenceAttention(q, k, v, { kind: 'none' }).out)).toEqual([2, 3]);
    const q3 = tensor(new Float32Array(6), [1, 3, 2]);
    const k2 = tensor(new Float32Array(4), [1, 2, 2]);
    expect(() => referenceAttention(q3, k2, k2, { kind: 'none' })).toThrow(/multiple of kv heads/);
  });
});
