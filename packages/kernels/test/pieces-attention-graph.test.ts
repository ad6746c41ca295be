import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MASKED_SCORE, randomTensor, referenceAttention, seededRandom, type BlockMask, type BlockPiece, type MaskSpec, type Tensor } from '@seqpar/core';
import { createAttentionKernel, type AttentionKernel } from '../src/index.js';

let kernel: AttentionKernel;
beforeAll(async () => {
  kernel = await createAttentionKernel({ threads: 1 });
});
afterAll(async () => kernel?.close());

/** Max abs difference; two masked lse values (both ≈ -1e30) count as equal. */
function maxError(got: Float32Array, expected: Float64Array): number {
  let max = 0;
  for (let i = 0; i < got.length; i++) {
    if (got[i]! < MASKED_SCORE / 10 && expected[i]! < MASKED_SCORE / 10) continue;
    max = Math.max(max, Math.abs(got[i]! - expected[i]!));
  }
  return max;
}

/** A window strip of `rows` rows (at most `window`) seeing `window` keys each, as its three pieces. */
function windowStrip(rows: number, window: number): { sk: number; mask: MaskSpec; pieces: BlockPiece[] } {
  const sk = rows + window - 1;
  const min = 0;
  const max = window - 1;
  // Row i sees keys [i, i + window): every row sees [rows - 1, window - 1] (the core); the fringes are triangles.
  const band = (shift: number): BlockMask => ({ kind: 'band', min: min - shift, max: max - shift });
  return {
    sk,
    mask: { kind: 'band', min, max },
    pieces: [
      { query: { start: 0, end: rows }, key: { start: 0, end: rows - 1 }, mask: band(0) },
      { query: { start: 0, end: rows }, key: { start: rows - 1, end: window }, mask: { kind: 'none' } },
      { query: { start: 0, end: rows }, key: { start: window, end: sk }, mask: band(window) },
    ],
  };
}

function inputs(sq: number, sk: number, hq: number, hkv: number, d: number, seed: number): [Tensor, Tensor, Tensor] {
  const random = seededRandom(seed);
  return [randomTensor([sq, hq, d], random, 2), randomTensor([sk, hkv, d], random, 2), randomTensor([sk, hkv, d], random)];
}

describe('several pieces of a block in one call (attendPieces) against the fp64 reference', () => {
  it.each([
    [512, 1024, 8, 8, 64],
    [512, 600, 6, 2, 16],
    [64, 97, 4, 1, 8],
  ])('a window strip: %i rows, window %i, Hq %i, Hkv %i, D %i', async (rows, window, hq, hkv, d) => {
    const { sk, mask, pieces } = windowStrip(rows, window);
    const [q, k, v] = inputs(rows, sk, hq, hkv, d, rows + window);
    const got = await kernel.attendPieces(q, k, v, pieces);
    const expected = referenceAttention(q, k, v, mask);
    expect(got.out.shape).toEqual([rows, hq, d]);
    expect(got.lse.shape).toEqual([hq, rows]);
    expect(maxError(got.out.data, expected.out)).toBeLessThanOrEqual(1e-4);
    expect(maxError(got.lse.data, expected.lse)).toBeLessThanOrEqual(1e-3);
  });

  it('pieces over overlapping rows, and rows no piece reaches (out 0, lse masked)', async () => {
    // A band min -5, max 30 over 301 x 257 cut at key 130: rows 0-149 see keys below it, rows 100-261 keys from
    // it on; rows 262-300 see no key at all.
    const [sq, sk] = [301, 257];
    const mask: MaskSpec = { kind: 'band', min: -5, max: 30 };
    const pieces: BlockPiece[] = [
      { query: { start: 0, end: 150 }, key: { start: 0, end: 130 }, mask },
      { query: { start: 100, end: 262 }, key: { start: 130, end: 257 }, mask: { kind: 'band', min: -35, max: 0 } },
    ];
    const [q, k, v] = inputs(sq, sk, 6, 3, 16, 7);
    const got = await kernel.attendPieces(q, k, v, pieces);
    const expected = referenceAttention(q, k, v, mask);
    expect(maxError(got.out.data, expected.out)).toBeLessThanOrEqual(1e-4);
    expect(maxError(got.lse.data, expected.lse)).toBeLessThanOrEqual(1e-3);
    for (let h = 0; h < 6; h++) expect(got.lse.data[h * sq + 300]).toBeLessThan(MASKED_SCORE / 10);
    expect(got.out.data.subarray(262 * 6 * 16).every((x) => x === 0)).toBe(true);
  });

  it('recomputes piece by piece when a fused piece cannot bracket its scores', async () => {
    // One key far more aligned with every query than the rest: the dense core's row max sits ~100 above its mean score.
    const { sk, mask, pieces } = windowStrip(64, 200);
    const [q, k, v] = inputs(64, sk, 2, 2, 16, 3);
    for (let i = 0; i < 64 * 2; i++) q.data[i * 16] = 10;
    for (let h = 0; h < 2; h++) k.data[(100 * 2 + h) * 16] = 40;
    const got = await kernel.attendPieces(q, k, v, pieces);
    const expected = referenceAttention(q, k, v, mask);
    expect(maxError(got.out.data, expected.out)).toBeLessThanOrEqual(1e-4);
    expect(maxError(got.lse.data, expected.lse)).toBeLessThanOrEqual(1e-3);
  });
});
