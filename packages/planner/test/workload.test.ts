import { describe, expect, it } from 'vitest';
import { UsageError } from '@seqpar/core';
import { checkWorkload, totalPairs } from '../src/workload.js';

describe('totalPairs', () => {
  it('prices only the pairs packed documents and a window leave visible', () => {
    const w = { seq: 10, prefix: 0, causal: true, heads: 1, kvHeads: 1, headDim: 1, bytesPerElement: 4 };
    expect(totalPairs(w)).toBe(55);
    expect(totalPairs({ ...w, documents: [4, 6] })).toBe(10 + 21);
    expect(totalPairs({ ...w, window: 3 })).toBe(1 + 2 + 8 * 3);
    expect(totalPairs({ ...w, causal: false, documents: [4, 6] })).toBe(16 + 36);
    expect(() => checkWorkload({ ...w, documents: [4, 5] })).toThrow(UsageError);
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
