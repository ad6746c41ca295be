import { describe, expect, it } from 'vitest';
import { LAYOUTS, layoutPositions, mod, partStart, shardLength, shardRows, unshardRows, zigzagChunks } from '../src/index.js';

const SEQS = [0, 1, 7, 100, 1023, 4096];
const RANKS = [1, 2, 3, 4, 5, 6, 7, 8];

describe.each(LAYOUTS)('%s layout', (kind) => {
  it.each(SEQS)('partitions S = %i over N = 1..8 ranks and round-trips rows', (seq) => {
    for (const n of RANKS) {
      const owned = Array.from({ length: n }, (_, rank) => Array.from(layoutPositions(kind, seq, n, rank)));
      for (const positions of owned) expect(positions).toEqual([...positions].sort((a, b) => a - b));
      expect(owned.map((positions) => positions.length)).toEqual(owned.map((_, rank) => shardLength(kind, seq, n, rank)));
      expect(owned.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: seq }, (_, i) => i));
      const rows = { data: Float32Array.from({ length: seq * 3 }, (_, i) => i * 0.5), shape: [seq, 3] };
      const shards = shardRows(rows, kind, n);
      expect(shards.map((shard) => shard.shape[0])).toEqual(owned.map((positions) => positions.length));
      expect(Array.from(unshardRows(shards, kind, seq).data)).toEqual(Array.from(rows.data));
    }
  });

  it('balances token counts within one (two for zigzag) across ranks', () => {
    for (const n of RANKS) {
      const counts = Array.from({ length: n }, (_, rank) => layoutPositions(kind, 1023, n, rank).length);
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(kind === 'zigzag' ? 2 : 1);
    }
  });
});

describe('layout specifics', () => {
  it('stripes every N-th token and zigzags chunks r and 2N-1-r', () => {
    expect(Array.from(layoutPositions('striped', 10, 4, 1))).toEqual([1, 5, 9]);
    expect(Array.from(layoutPositions('zigzag', 16, 4, 1))).toEqual([2, 3, 12, 13]);
    expect(zigzagChunks(16, 4, 0)).toEqual({ first: { start: 0, end: 2 }, second: { start: 14, end: 16 } });
    expect(Array.from(layoutPositions('contiguous', 3, 4, 0))).toEqual([]);
  });

  it('rejects a rank outside the world and a shard of the wrong size', () => {
    expect(() => layoutPositions('striped', 10, 4, 4)).toThrow(RangeError);
    expect(() => layoutPositions('zigzag', -1, 4, 0)).toThrow(RangeError);
    expect(() => shardLength('contiguous', 2.5, 4, 0)).toThrow(RangeError);
    const shards = shardRows({ data: new Float32Array(8), shape: [4, 2] }, 'contiguous', 2);
    expect(() => unshardRows([shards[0]!, shards[0]!, shards[1]!], 'contiguous', 4)).toThrow(expect.objectContaining({ code: 'ERR_SHAPE_MISMATCH' }));
  });
});

describe('ring arithmetic', () => {
  it('mod stays in 0..n-1 for the ranks behind and ahead of a rank', () => {
    expect([-5, -1, 0, 3, 4, 9].map((a) => mod(a, 4))).toEqual([3, 3, 0, 3, 0, 1]);
  });

  it('partStart cuts a sequence into near-equal parts that tile it', () => {
    expect(Array.from({ length: 4 }, (_, i) => partStart(i, 3, 10))).toEqual([0, 3, 6, 10]);
  });
});
