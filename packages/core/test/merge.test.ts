import { describe, expect, it } from 'vitest';
import { createPartial, mergeInto, MASKED_SCORE, type PartialAttention } from '../src/index.js';

const partial = (out: number[], lse: number[]): PartialAttention => ({
  out: { data: Float32Array.from(out), shape: [lse.length, 1, out.length / lse.length] },
  lse: { data: Float32Array.from(lse), shape: [1, lse.length] },
});

describe('mergeInto', () => {
  it('computes log(e^a + e^b) and the matching weighted mean', () => {
    const acc = partial([1, 2], [0]);
    mergeInto(acc, partial([3, 6], [Math.log(3)]));
    expect(acc.lse.data[0]).toBeCloseTo(Math.log(4), 6);
    expect(Array.from(acc.out.data)).toEqual([expect.closeTo(2.5, 6), expect.closeTo(5, 6)]);
  });

  it('lets a fully masked side drop out, and keeps two masked sides masked with out 0', () => {
    const acc = createPartial(2, 1, 2);
    mergeInto(acc, partial([7, 8, 0, 0], [1.5, MASKED_SCORE]));
    expect(Array.from(acc.out.data)).toEqual([7, 8, 0, 0]);
    expect(acc.lse.data[0]).toBe(1.5);
    expect(acc.lse.data[1]).toBeLessThan(-1e29);
    mergeInto(acc, partial([0, 0, 0, 0], [MASKED_SCORE, MASKED_SCORE]));
    expect(Array.from(acc.out.data)).toEqual([7, 8, 0, 0]);
    expect(acc.lse.data[0]).toBe(1.5);
  });

  it('stays finite and exact for large lse gaps', () => {
    const acc = partial([1, 1], [0]);
    mergeInto(acc, partial([5, 5], [200]));
    expect(Array.from(acc.out.data)).toEqual([5, 5]);
    expect(acc.lse.data[0]).toBe(200);
    mergeInto(acc, partial([9, 9], [-300]));
    expect(Array.from(acc.out.data)).toEqual([5, 5]);
    expect(acc.lse.data[0]).toBe(200);
  });

  it('merges a block into a sub-range of rows', () => {
    const acc = createPartial(3, 1, 1);
    mergeInto(acc, partial([4], [0]), { start: 1, end: 2 });
    expect(Array.from(acc.out.data)).toEqual([0, 4, 0]);
    expect(() => mergeInto(acc, partial([4, 5], [0, 0]), { start: 2, end: 3 })).toThrow(RangeError);
  });
});
