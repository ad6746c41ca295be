import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPartial, randomTensor, RankRecorder, referenceAttention, seededRandom, type BlockMask } from '@seqpar/core';
import { createAttentionKernel, type AttentionKernel } from '@seqpar/kernels';
import { attendInto, planPieces } from '../src/block-attention.js';
import type { RankContext } from '../src/rank-context.js';

/** Counts how often each (query, key) pair is computed unmasked by the pieces; a masked piece counts its visible pairs. */
function coverage(sq: number, sk: number, mask: BlockMask): number[][] {
  const seen = Array.from({ length: sq }, () => new Array<number>(sk).fill(0));
  for (const piece of planPieces(sq, sk, mask)) {
    // A masked piece is a block whose local origin lies on the diagonal: it shows pairs by the same rule.
    if (piece.mask !== 'none') expect(piece.query.start).toBe(piece.key.start);
    for (let i = piece.query.start; i < piece.query.end; i++) {
      for (let j = piece.key.start; j < piece.key.end; j++) {
        const [li, lj] = [i - piece.query.start, j - piece.key.start];
        const shown = piece.mask === 'none' || (piece.mask === 'causal-inclusive' ? lj <= li : lj < li);
        if (shown) seen[i]![j]! += 1;
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
    for (const mask of ['none', 'causal-inclusive', 'causal-strict'] as const) {
      const seen = coverage(sq, sk, mask);
      for (let i = 0; i < sq; i++) {
        for (let j = 0; j < sk; j++) {
          const visible = mask === 'none' || (mask === 'causal-inclusive' ? j <= i : j < i);
          if (seen[i]![j] !== (visible ? 1 : 0)) throw new Error(`${mask} ${sq}x${sk}: pair (${i}, ${j}) seen ${seen[i]![j]} times`);
        }
      }
    }
  });

  it('keeps pieces small and of few shapes', () => {
    const pieces = planPieces(16384, 16384, 'causal-inclusive');
    expect(Math.max(...pieces.map((p) => p.query.end - p.query.start))).toBeLessThanOrEqual(512);
    expect(Math.max(...pieces.map((p) => p.key.end - p.key.start))).toBeLessThanOrEqual(8192);
    expect(new Set(pieces.map((p) => `${p.query.end - p.query.start}x${p.key.end - p.key.start}:${p.mask}`)).size).toBeLessThanOrEqual(7);
    // Keys per piece stop at the block's query count: 8k late-chunk queries against 16k keys go 8k at a time.
    expect(Math.max(...planPieces(8192, 16384, 'none').map((p) => p.key.end - p.key.start))).toBe(8192);
    // ... and at 32768 whatever the block: one rank holding 64k keys still runs bounded calls.
    expect(Math.max(...planPieces(65536, 65536, 'none').map((p) => p.key.end - p.key.start))).toBe(32768);
  });
});

describe('attendInto', () => {
  let kernel: AttentionKernel;
  beforeAll(async () => (kernel = await createAttentionKernel({ threads: 1 })));
  afterAll(() => kernel.close());
  const maxAbsDiff = (a: Float32Array, b: Float64Array | Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

  // 4200 x 4199 gives partial and ragged query chunks and causal halvings.
  it.each<[BlockMask, number, number]>([
    ['causal-inclusive', 4200, 4200],
    ['causal-strict', 4200, 4199],
    ['none', 2100, 9000],
  ])('%s %i x %i pieces merge to the exact attention', async (mask, sq, sk) => {
    const random = seededRandom(sq + sk);
    const [q, k, v] = [randomTensor([sq, 2, 4], random), randomTensor([sk, 1, 4], random), randomTensor([sk, 1, 4], random)];
    const ctx = { kernel, recorder: new RankRecorder(0) } as unknown as RankContext;
    const acc = createPartial(sq, 2, 4);
    await attendInto(ctx, acc, { start: 0, end: sq }, q, k, v, mask, 'test');
    const expected = referenceAttention(q, k, v, { kind: mask });
    expect(maxAbsDiff(acc.out.data, expected.out)).toBeLessThan(1e-5);
    // A row that sees no key (row 0 under the strict mask) has lse ~ -1e30 in both: compare the others' values.
    const seen = (lse: ArrayLike<number>) => Float64Array.from(lse, (x) => (x < -1e29 ? -1 : x));
    expect(maxAbsDiff(Float32Array.from(seen(acc.lse.data)), seen(expected.lse))).toBeLessThan(1e-4);
  });
});
