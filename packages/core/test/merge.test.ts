import { describe, expect, it } from 'vitest';
import { createPartial, isMaskedLse, mergeInto, MASKED_SCORE, type PartialAttention } from '../src/index.js';

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

  it('ignores whatever a masked side holds in out (a kernel may leave mean(V) there)', () => {
    const acc = partial([9, 9, 1, 2], [MASKED_SCORE, 0.25]);
    mergeInto(acc, partial([0.1, 0.3, 5, 5], [0.5, MASKED_SCORE + 1e23]));
    expect(Array.from(acc.out.data)).toEqual([Math.fround(0.1), Math.fround(0.3), 1, 2]);
    expect(Array.from(acc.lse.data)).toEqual([0.5, 0.25]);
    const masked = partial([3, 4], [MASKED_SCORE]);
    mergeInto(masked, partial([5, 6], [MASKED_SCORE]));
    expect(Array.from(masked.out.data)).toEqual([3, 4]);
    expect(isMaskedLse(masked.lse.data[0]!)).toBe(true);
    expect(isMaskedLse(-1e20)).toBe(false);
  });

  it('stays finite and exact for large lse gaps', () => {
    const acc = partial([1, 1], [0]);
    mergeInto(acc, partial([5, 5], [200]));
    expect(Array.from(acc.out.data)).toEqual([5, 5]);
    expect(acc.lse.data[0]).toBe(200);
    mergeInto(acc, partial([9, 9], [-300]));
    expect(Array.from(acc.out.data)).toEqual([5, 5]);
    expect(acc.lse.data[0]).toBe(200);
    const small = partial([0.1, -0.7], [1e4]);
    mergeInto(small, partial([3, 3], [-1e4]));
    mergeInto(small, partial([0.2, 0.4], [1e4 + 100]));
    expect(Array.from(small.out.data)).toEqual([Math.fround(0.2), Math.fround(0.4)]);
    expect(small.lse.data[0]).toBe(1e4 + 100);
    const even = partial([1, 3], [1e4]);
    mergeInto(even, partial([3, 5], [1e4]));
    expect(Array.from(even.out.data)).toEqual([2, 4]);
    expect(even.lse.data[0]).toBe(Math.fround(1e4 + Math.log(2)));
  });

  it('takes a block whole into rows nothing reached yet, every head in its place, then merges the next one into it', () => {
    const [rows, heads, dim] = [4, 2, 3];
    const acc = createPartial(rows, heads, dim);
    const block = {
      out: { data: Float32Array.from({ length: 2 * heads * dim }, (_, i) => i + 0.5), shape: [2, heads, dim] },
      lse: { data: Float32Array.of(1, 2, 3, 4), shape: [heads, 2] },
    };
    mergeInto(acc, block, { start: 1, end: 3 });
    expect(Array.from(acc.out.data)).toEqual([...Array(heads * dim).fill(0), ...block.out.data, ...Array(heads * dim).fill(0)]);
    expect(acc.lse.data.slice(1, 3)).toEqual(Float32Array.of(1, 2)); // head 0, rows 1 and 2
    expect(acc.lse.data.slice(rows + 1, rows + 3)).toEqual(Float32Array.of(3, 4)); // head 1
    expect([0, 3, rows, rows + 3].every((i) => isMaskedLse(acc.lse.data[i]!))).toBe(true);
    mergeInto(acc, block, { start: 1, end: 3 }); // the same block again: lse + log 2, out unchanged
    expect(acc.lse.data[1]).toBeCloseTo(1 + Math.log(2), 6);
    expect(acc.out.data[heads * dim]).toBeCloseTo(0.5, 6);
  });

  it('merges a block into a sub-range of rows', () => {
    const acc = createPartial(3, 1, 1);
    mergeInto(acc, partial([4], [0]), { start: 1, end: 2 });
    expect(Array.from(acc.out.data)).toEqual([0, 4, 0]);
    expect(() => mergeInto(acc, partial([4, 5], [0, 0]), { start: 2, end: 3 })).toThrow(RangeError);
    expect(() => mergeInto(acc, partial([4, 5], [0, 0]), { start: 2, end: 4 })).toThrow(RangeError);
  });
});
