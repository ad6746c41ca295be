import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPartial, isVisible, randomTensor, RankRecorder, referenceAttention, seededRandom, type BlockMask } from '@seqpar/core';
import { createAttentionKernel, type AttentionKernel } from '@seqpar/kernels';
import { attendInto, planPieces } from '../src/block-attention.js';
import type { RankContext } from '../src/rank-context.js';

/** Counts how often each (query, key) pair is computed unmasked by the pieces; a masked piece counts its visible pairs. */
function coverage(sq: number, sk: number, mask: BlockMask, keyCap?: number, rowCap?: number): number[][] {
  const seen = Array.from({ length: sq }, () => new Array<number>(sk).fill(0));
  for (const piece of planPieces(sq, sk, mask, keyCap, rowCap)) {
    for (let i = piece.query.start; i < piece.query.end; i++) {
      for (let j = piece.key.start; j < piece.key.end; j++) {
        if (isVisible(piece.mask, i - piece.query.start, j - piece.key.start)) seen[i]![j]! += 1;
      }
    }
  }
  return seen;
}

describe('planPieces cuts a block into bounded kernel calls', () => {
  it.each([
    [0, 0],
    [1, 1],
    [3, 5],
    [700, 700],
    [1300, 1299],
    [1299, 1300],
    [600, 1700],
    [2100, 1030],
  ])('%i x %i: every visible pair exactly once, nothing else', (sq, sk) => {
    const masks: BlockMask[] = [
      { kind: 'none' },
      { kind: 'causal-inclusive' },
      { kind: 'causal-strict' },
      // Sliding windows of 1, 97 and 1024 tokens, the window edge alone, and a band off the corner.
      { kind: 'band', min: 0, max: 0 },
      { kind: 'band', min: -96, max: 0 },
      { kind: 'band', min: -1023, max: 0 },
      { kind: 'band', min: 0, max: Infinity },
      { kind: 'band', min: 7, max: 600 },
    ];
    for (const mask of masks) {
      const seen = coverage(sq, sk, mask);
      for (let i = 0; i < sq; i++) {
        for (let j = 0; j < sk; j++) {
          const visible = isVisible(mask, i, j);
          if (seen[i]![j] !== (visible ? 1 : 0)) throw new Error(`${JSON.stringify(mask)} ${sq}x${sk}: pair (${i}, ${j}) seen ${seen[i]![j]} times`);
        }
      }
    }
  });

  const rows = (p: { query: { start: number; end: number } }) => p.query.end - p.query.start;
  const area = (p: { query: { start: number; end: number }; key: { start: number; end: number } }) => rows(p) * (p.key.end - p.key.start);

  it('holds at most the kernel’s key cap per call, every visible pair still once', () => {
    for (const mask of [{ kind: 'none' }, { kind: 'causal-inclusive' }] satisfies BlockMask[]) {
      const seen = coverage(1500, 1700, mask, 512);
      const wrong = seen.flatMap((row, i) => row.flatMap((times, j) => (times === (isVisible(mask, i, j) ? 1 : 0) ? [] : [`(${i}, ${j}) ${times}x`])));
      expect(wrong.slice(0, 5)).toEqual([]);
      expect(Math.max(...planPieces(1500, 1700, mask, 512).map((p) => p.key.end - p.key.start))).toBeLessThanOrEqual(512);
    }
  });

  it('holds at most a compute scope’s row cap per call (a server’s prefill chunk), every visible pair still once', () => {
    const masks: BlockMask[] = [{ kind: 'none' }, { kind: 'causal-inclusive' }, { kind: 'causal-strict' }, { kind: 'band', min: -96, max: 0 }];
    for (const rowCap of [64, 192, 1024]) {
      for (const mask of masks) {
        const seen = coverage(1300, 1299, mask, undefined, rowCap);
        const wrong = seen.flatMap((row, i) => row.flatMap((times, j) => (times === (isVisible(mask, i, j) ? 1 : 0) ? [] : [`(${i}, ${j}) ${times}x`])));
        expect(wrong.slice(0, 5)).toEqual([]);
        expect(Math.max(...planPieces(1300, 1299, mask, undefined, rowCap).map(rows))).toBeLessThanOrEqual(rowCap);
      }
    }
  });

  it('keeps pieces bounded and of few shapes', () => {
    const pieces = planPieces(16384, 16384, { kind: 'causal-inclusive' });
    // Masked pieces (whose graph materialises scores) stay at 512 rows; dense ones (the fused op streams keys) at 2048.
    expect(Math.max(...pieces.filter((p) => p.mask.kind !== 'none').map(rows))).toBeLessThanOrEqual(512);
    expect(Math.max(...pieces.map(rows))).toBeLessThanOrEqual(2048);
    expect(Math.max(...pieces.map((p) => p.key.end - p.key.start))).toBeLessThanOrEqual(8192);
    const shapes = (mask: BlockMask) => new Set(planPieces(8192, 8192, mask).map((p) => `${rows(p)}x${p.key.end - p.key.start}`));
    expect(new Set(pieces.map((p) => `${rows(p)}x${p.key.end - p.key.start}:${p.mask.kind}`)).size).toBeLessThanOrEqual(7);
    // A strict triangle reaches (n-1) x (n-1) but is cut at whole 64-row units: the shapes of the inclusive one.
    expect(shapes({ kind: 'causal-strict' })).toEqual(shapes({ kind: 'causal-inclusive' }));
    // All but the 512-row diagonal triangles is dense.
    expect(pieces.filter((p) => p.mask.kind === 'none').reduce((sum, p) => sum + area(p), 0)).toBe(16384 ** 2 / 2 - (32 * 512 ** 2) / 2);
    // Keys per piece stop at the block's query count: 8k late-chunk queries against 16k keys go 8k at a time.
    expect(Math.max(...planPieces(8192, 16384, { kind: 'none' }).map((p) => p.key.end - p.key.start))).toBe(8192);
    // ... and at 32768 whatever the block: one rank holding 64k keys still runs bounded calls.
    expect(Math.max(...planPieces(65536, 65536, { kind: 'none' }).map((p) => p.key.end - p.key.start))).toBe(32768);
  });

  it.each([
    { window: 97, dense: 0, calls: 32 },
    { window: 1024, dense: 0, calls: 33 },
    { window: 4096, dense: 0.7, calls: 110 },
  ])('cuts a sliding window of $window into masked strips, with a dense core between masked fringes once W > 1024', ({ window, dense, calls }) => {
    const seq = 16384;
    const pieces = planPieces(seq, seq, { kind: 'band', min: 1 - window, max: 0 });
    expect(pieces.filter((p) => p.mask.kind === 'none').reduce((sum, p) => sum + area(p), 0)).toBeGreaterThanOrEqual(dense * seq * window);
    // Masked pieces of at most 512 rows (the kernel trims each tile's keys to the band), so few calls, not one per 64 rows.
    expect(Math.max(...pieces.filter((p) => p.mask.kind !== 'none').map(rows))).toBeLessThanOrEqual(512);
    expect(pieces.length).toBeLessThanOrEqual(calls);
    // Sessions: one per shape and mask.
    expect(new Set(pieces.map((p) => `${rows(p)}x${p.key.end - p.key.start}:${JSON.stringify(p.mask)}`)).size).toBeLessThanOrEqual(8);
  });
});

describe('attendInto', () => {
  let kernel: AttentionKernel;
  beforeAll(async () => (kernel = await createAttentionKernel({ threads: 1 })));
  afterAll(() => kernel.close());
  const maxAbsDiff = (a: Float32Array, b: Float64Array | Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

  // 4200 x 4199 gives partial and ragged query chunks and causal halvings.
  it.each<[BlockMask, number, number]>([
    [{ kind: 'causal-inclusive' }, 4200, 4200],
    [{ kind: 'causal-strict' }, 4200, 4199],
    [{ kind: 'none' }, 2100, 9000],
    [{ kind: 'band', min: -700, max: 0 }, 3000, 3000],
    // Windows of 97 and 1024: masked band strips, and strips of a dense core between two triangles.
    [{ kind: 'band', min: -96, max: 0 }, 1300, 1300],
    [{ kind: 'band', min: -1023, max: 0 }, 2100, 2100],
    // Windows of 1 (the diagonal alone) and of the whole block (causal), on lengths no strip divides.
    [{ kind: 'band', min: 0, max: 0 }, 1100, 1100],
    [{ kind: 'band', min: -2599, max: 0 }, 2600, 2600],
  ])('%o %i x %i pieces merge to the exact attention', async (mask, sq, sk) => {
    const random = seededRandom(sq + sk);
    const [q, k, v] = [randomTensor([sq, 2, 4], random), randomTensor([sk, 1, 4], random), randomTensor([sk, 1, 4], random)];
    const ctx = { kernel, recorder: new RankRecorder(0) } as unknown as RankContext;
    const acc = createPartial(sq, 2, 4);
    await attendInto(ctx, acc, { start: 0, end: sq }, q, k, v, mask, 'test');
    const expected = referenceAttention(q, k, v, mask);
    expect(maxAbsDiff(acc.out.data, expected.out)).toBeLessThan(1e-5);
    // A row that sees no key (row 0 under the strict mask) has lse ~ -1e30 in both: compare the others' values.
    const seen = (lse: ArrayLike<number>) => Float64Array.from(lse, (x) => (x < -1e29 ? -1 : x));
    expect(maxAbsDiff(Float32Array.from(seen(acc.lse.data)), seen(expected.lse))).toBeLessThan(1e-4);
  });

  it('sends an interior window strip (core and two fringes) as one call', async () => {
    const calls: string[] = [];
    const counting = {
      attend: (...args: Parameters<AttentionKernel['attend']>) => (calls.push('attend'), kernel.attend(...args)),
      attendPieces: (...args: Parameters<AttentionKernel['attendPieces']>) => (calls.push(`pieces ${args[3].length}`), kernel.attendPieces(...args)),
    };
    const random = seededRandom(3);
    const [q, k, v] = [randomTensor([4096, 2, 4], random), randomTensor([4096, 1, 4], random), randomTensor([4096, 1, 4], random)];
    const ctx = { kernel: counting, recorder: new RankRecorder(0) } as unknown as RankContext;
    await attendInto(ctx, createPartial(4096, 2, 4), { start: 0, end: 4096 }, q, k, v, { kind: 'band', min: -2047, max: 0 }, 'test');
    // A core goes dense between two fringes from twice the strip's rows on (W 2048 at 512 rows): the rows before
    // 2048 are clipped by the block's start (seven single pieces); the four strips of rows 2048-4096 go whole.
    expect(calls.filter((c) => c === 'pieces 3')).toHaveLength(4);
    expect(calls).toHaveLength(4 + 7);
  });
});
