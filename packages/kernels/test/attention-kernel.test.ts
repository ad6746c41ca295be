import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MASKED_SCORE, randomTensor, referenceAttention, seededRandom, type BlockMask, type BlockPiece, type MaskSpec, type PartialAttention, type Tensor } from '@seqpar/core';
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

function maskFor(kind: MaskSpec['kind'], sq: number, sk: number): MaskSpec {
  // A two-sided band (a sliding window's diagonal strip) that leaves some rows without keys when Sq > Sk.
  if (kind === 'band') return { kind, min: -Math.floor(sk / 3), max: 2 };
  if (kind !== 'positions') return { kind };
  // Keys at positions 0, 2, 4, ...; queries at positions from -1 upward, so the first query sees nothing.
  return { kind, queryPositions: Int32Array.from({ length: sq }, (_, i) => i - 1), keyPositions: Int32Array.from({ length: sk }, (_, j) => 2 * j) };
}

// Every value of Sq, Sk in {1, 3, 257, 1000} appears, with each head layout and head dim, without the full product;
// the graph's three paths too: batched (<= 256 x 256), row tiles (<= 512 x 512) and per-head tiles (600 x 600).
const CASES: Array<[number, number, number, number, number]> = [
  [600, 600, 6, 2, 16],
  [1, 1, 5, 5, 8],
  [3, 257, 5, 5, 64],
  [257, 3, 6, 2, 128],
  [1000, 257, 6, 3, 8],
  [257, 1000, 6, 2, 64],
  [1, 1000, 6, 3, 128],
  [1000, 1, 5, 5, 64],
  [3, 3, 6, 3, 8],
];
const MASKS: Array<MaskSpec['kind']> = ['none', 'causal-inclusive', 'causal-strict', 'band', 'positions'];

describe('block attention kernel against the fp64 reference', () => {
  it.each(CASES)('Sq %i, Sk %i, Hq %i, Hkv %i, D %i, every mask', async (sq, sk, hq, hkv, d) => {
    const random = seededRandom(sq * 7 + sk * 13 + hq + d);
    const q = randomTensor([sq, hq, d], random, 2);
    const k = randomTensor([sk, hkv, d], random, 2);
    const v = randomTensor([sk, hkv, d], random);
    for (const kind of MASKS) {
      const mask = maskFor(kind, sq, sk);
      const got = await kernel.attend(q, k, v, mask);
      const expected = referenceAttention(q, k, v, mask);
      expect(got.out.shape).toEqual([sq, hq, d]);
      expect(got.lse.shape).toEqual([hq, sq]);
      expect(maxError(got.out.data, expected.out)).toBeLessThanOrEqual(1e-5);
      expect(maxError(got.lse.data, expected.lse)).toBeLessThanOrEqual(1e-4);
    }
  });

  it.each([
    { min: 0, max: Infinity },
    { min: -Infinity, max: -3 },
    { min: 5, max: 40 },
  ])('band min $min max $max (one-sided: a window edge, a shifted causal diagonal) in every graph path', async (band) => {
    const random = seededRandom(band.max === Infinity ? 1 : band.min + 20);
    for (const [sq, sk] of [
      [200, 230],
      [500, 480],
      [700, 650],
    ] as const) {
      const q = randomTensor([sq, 4, 16], random, 2);
      const k = randomTensor([sk, 2, 16], random, 2);
      const v = randomTensor([sk, 2, 16], random);
      const mask: MaskSpec = { kind: 'band', ...band };
      const got = await kernel.attend(q, k, v, mask);
      const expected = referenceAttention(q, k, v, mask);
      expect(maxError(got.out.data, expected.out)).toBeLessThanOrEqual(1e-5);
      expect(maxError(got.lse.data, expected.lse)).toBeLessThanOrEqual(1e-4);
    }
  });

  it('gives a fully masked row out 0 and lse ≈ -1e30', async () => {
    const random = seededRandom(2);
    const q = randomTensor([4, 2, 8], random);
    const k = randomTensor([4, 1, 8], random);
    const { out, lse } = await kernel.attend(q, k, k, { kind: 'causal-strict' });
    expect(out.data.subarray(0, 16).every((x) => x === 0)).toBe(true); // row 0, both heads (±0)
    expect(lse.data[0]).toBeLessThan(-1e29);
    expect(lse.data[4]).toBeLessThan(-1e29);
    expect(lse.data[1]).toBeGreaterThan(-100);
  });
});

describe('kernel behaviour', () => {
  it('rejects shapes that do not fit together with typed errors', async () => {
    const random = seededRandom(3);
    const q = randomTensor([4, 6, 8], random);
    await expect(kernel.attend(q, randomTensor([4, 4, 8], random), randomTensor([4, 4, 8], random), { kind: 'none' })).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH' });
    await expect(kernel.attend(q, randomTensor([4, 3, 4], random), randomTensor([4, 3, 4], random), { kind: 'none' })).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH' });
    await expect(kernel.attend(q, randomTensor([4, 3, 8], random), randomTensor([5, 3, 8], random), { kind: 'none' })).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH' });
  });

  it('leaves the caller’s buffers intact and its event loop free while computing', async () => {
    const random = seededRandom(4);
    const q = randomTensor([1024, 8, 64], random);
    const k = randomTensor([1024, 8, 64], random);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = performance.now();
    await kernel.attend(q, k, k, { kind: 'none' });
    const elapsed = performance.now() - started;
    clearInterval(timer);
    expect(q.data.length).toBe(1024 * 8 * 64);
    expect(ticks).toBeGreaterThanOrEqual(Math.floor(elapsed / 5 / 3));
  });

  it('fails with ERR_DEVICE_UNAVAILABLE and install advice where the CUDA provider is missing', async () => {
    await expect(createAttentionKernel({ device: 'cuda', deviceIndex: 0 })).rejects.toMatchObject({
      code: 'ERR_DEVICE_UNAVAILABLE',
      message: expect.stringMatching(/onnxruntime-node-install=cuda12/),
    });
  });
});

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

/** The pieces of `mask` over q, k, v in one call, against the fp64 reference of the whole mask. */
async function expectPiecesExact(q: Tensor, k: Tensor, v: Tensor, mask: MaskSpec, pieces: BlockPiece[]): Promise<PartialAttention> {
  const got = await kernel.attendPieces(q, k, v, pieces);
  const expected = referenceAttention(q, k, v, mask);
  expect(got.out.shape).toEqual(q.shape);
  expect(got.lse.shape).toEqual([q.shape[1], q.shape[0]]);
  expect(maxError(got.out.data, expected.out)).toBeLessThanOrEqual(1e-4);
  expect(maxError(got.lse.data, expected.lse)).toBeLessThanOrEqual(1e-3);
  return got;
}

describe('several pieces of a block in one call (attendPieces) against the fp64 reference', () => {
  it.each([
    [512, 1024, 8, 8, 64],
    [512, 600, 6, 2, 16],
    [64, 97, 4, 1, 8],
  ])('a window strip: %i rows, window %i, Hq %i, Hkv %i, D %i', async (rows, window, hq, hkv, d) => {
    const { sk, mask, pieces } = windowStrip(rows, window);
    await expectPiecesExact(...inputs(rows, sk, hq, hkv, d, rows + window), mask, pieces);
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
    const got = await expectPiecesExact(...inputs(sq, sk, 6, 3, 16, 7), mask, pieces);
    for (let h = 0; h < 6; h++) expect(got.lse.data[h * sq + 300]).toBeLessThan(MASKED_SCORE / 10);
    expect(got.out.data.subarray(262 * 6 * 16).every((x) => x === 0)).toBe(true);
  });

  it('recomputes piece by piece when a fused piece cannot bracket its scores', async () => {
    // One key far more aligned with every query than the rest: the dense core's row max sits ~100 above its mean score.
    const { sk, mask, pieces } = windowStrip(64, 200);
    const [q, k, v] = inputs(64, sk, 2, 2, 16, 3);
    for (let i = 0; i < 64 * 2; i++) q.data[i * 16] = 10;
    for (let h = 0; h < 2; h++) k.data[(100 * 2 + h) * 16] = 40;
    await expectPiecesExact(q, k, v, mask, pieces);
  });
});
