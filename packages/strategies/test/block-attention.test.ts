import { describe, expect, it } from 'vitest';
import type { BlockMask } from '@seqpar/core';
import { planPieces } from '../src/block-attention.js';

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
  });
});
