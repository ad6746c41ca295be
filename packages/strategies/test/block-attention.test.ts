import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPartial, isVisible, randomTensor, RankRecorder, referenceAttention, seededRandom, type BlockMask } from '@seqpar/core';
import { createAttentionKernel, type AttentionKernel } from '@seqpar/kernels';
import { attendInto, planPieces } from '../src/block-attention.js';
import type { RankContext } from '../src/rank-context.js';

/** Counts how often each (query, key) pair is computed unmasked by the pieces; a masked piece counts its visible pairs. */
function coverage(sq: number, sk: number, mask: BlockMask, keyCap?: number): number[][] {
  const seen = Array.from({ length: sq }, () => new Array<number>(sk).fill(0));
  for (const piece of planPieces(sq, sk, mask, keyCap)) {
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

  it('holds at most the kernel’s key cap per call, every visible pair still once', () => {
    for (const mask of [{ kind: 'none' }, { kind: 'causal-inclusive' }] satisfies BlockMask[]) {
      const seen = coverage(1500, 1700, mask, 512);
      const wrong = seen.flatMap((row, i) => row.flatMap((times, j) => (times === (isVisible(mask, i, j) ? 1 : 0) ? [] : [`(${i}, ${j}) ${times}x`])));
      expect(wrong.slice(0, 5)).toEqual([]);
      expect(Math.max(...planPieces(1500, 1700, mask, 512).map((p) => p.key.end - p.key.start))).toBeLessThanOrEqual(512);
    }
  });

  it('keeps pieces small and of few shapes', () => {
    const pieces = planPieces(16384, 16384, { kind: 'causal-inclusive' });
    expect(Math.max(...pieces.map((p) => p.query.end - p.query.start))).toBeLessThanOrEqual(512);
    expect(Math.max(...pieces.map((p) => p.key.end - p.key.start))).toBeLessThanOrEqual(8192);
    expect(new Set(pieces.map((p) => `${p.query.end - p.query.start}x${p.key.end - p.key.start}:${p.mask.kind}`)).size).toBeLessThanOrEqual(7);
    // Keys per piece stop at the block's query count: 8k late-chunk queries against 16k keys go 8k at a time.
    expect(Math.max(...planPieces(8192, 16384, { kind: 'none' }).map((p) => p.key.end - p.key.start))).toBe(8192);
    // ... and at 32768 whatever the block: one rank holding 64k keys still runs bounded calls.
    expect(Math.max(...planPieces(65536, 65536, { kind: 'none' }).map((p) => p.key.end - p.key.start))).toBe(32768);
  });

  it.each([
    { window: 1024, computed: 1.07, dense: 0 },
    { window: 4096, computed: 1.05, dense: 0.7 },
  ])('cuts a sliding window of $window to its band: about S·W computed, in few shapes', ({ window, computed, dense }) => {
    const seq = 16384;
    const pieces = planPieces(seq, seq, { kind: 'band', min: 1 - window, max: 0 });
    const area = (p: (typeof pieces)[number]) => (p.query.end - p.query.start) * (p.key.end - p.key.start);
    expect(pieces.reduce((sum, p) => sum + area(p), 0)).toBeLessThanOrEqual(computed * seq * window);
    expect(pieces.filter((p) => p.mask.kind === 'none').reduce((sum, p) => sum + area(p), 0)).toBeGreaterThanOrEqual(dense * seq * window);
    // Sessions: one per shape and mask; only the ramp at the start (rows < W) varies.
    expect(new Set(pieces.map((p) => `${p.query.end - p.query.start}x${p.key.end - p.key.start}:${JSON.stringify(p.mask)}`)).size).toBeLessThanOrEqual(window / 64 + 8);
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
});
