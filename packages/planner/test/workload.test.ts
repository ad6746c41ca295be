import { describe, expect, it } from 'vitest';
import { UsageError } from '@seqpar/core';
import { checkWorkload, totalPairs, visiblePairs } from '../src/workload.js';

const bruteForce = (q: number, k: number, shift: number): number => {
  let pairs = 0;
  for (let i = 0; i < q; i++) for (let j = 0; j < k; j++) if (j < i + shift) pairs++;
  return pairs;
};

describe('visiblePairs', () => {
  it('counts block-local causal pairs exactly for any block shape', () => {
    for (let q = 0; q <= 9; q++) {
      for (let k = 0; k <= 9; k++) {
        expect(visiblePairs(q, k, 'causal-inclusive')).toBe(bruteForce(q, k, 1));
        expect(visiblePairs(q, k, 'causal-strict')).toBe(bruteForce(q, k, 0));
        expect(visiblePairs(q, k, 'none')).toBe(q * k);
      }
    }
  });

  it('counts a whole causal request with a cached prefix', () => {
    const w = { seq: 4, prefix: 3, causal: true, heads: 1, kvHeads: 1, headDim: 1, bytesPerElement: 4 };
    expect(totalPairs(w)).toBe(4 * 3 + 10);
    expect(totalPairs({ ...w, causal: false })).toBe(4 * 7);
  });

  it('refuses heads that GQA cannot group', () => {
    expect(() => checkWorkload({ seq: 4, prefix: 0, causal: false, heads: 6, kvHeads: 4, headDim: 8, bytesPerElement: 4 })).toThrow(UsageError);
  });
});
