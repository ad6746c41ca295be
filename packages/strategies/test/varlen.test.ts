import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomTensor, referenceAttention, seededRandom, sequencePairs, type BlockAttentionKernel, type SequenceMask } from '@seqpar/core';
import { createAttentionKernel } from '@seqpar/kernels';
import { runStrategyInproc, STRATEGY_NAMES } from '../src/index.js';
import { maxAbsDiff } from './harness.js';

// Lengths 1 and 2, primes, and one document much longer than the rest (131 of 176 tokens).
const DOCUMENTS = [1, 2, 131, 3, 5, 1, 7, 2, 11, 13];
const SEQ = DOCUMENTS.reduce((a, b) => a + b, 0);
const D = 8;

let kernel: BlockAttentionKernel;
beforeAll(async () => {
  kernel = await createAttentionKernel({ threads: 1 });
});
afterAll(async () => kernel?.close());

const MASKS: SequenceMask[] = [
  { causal: false, documents: DOCUMENTS },
  { causal: true, documents: DOCUMENTS },
  ...[1, 97, SEQ].flatMap((window) => [
    { causal: true, window },
    { causal: true, documents: DOCUMENTS, window },
  ]),
];
const describeMask = (m: SequenceMask): string => `${m.causal ? 'causal' : 'full'}${m.documents ? ' documents' : ''}${m.window ? ` window ${m.window}` : ''}`;

describe.each([1, 2, 3, 4, 8])('N = %i', (n) => {
  // Ulysses shards heads: N kv heads keep it runnable at every N; 2 query heads per kv head exercise GQA.
  const [hq, hkv] = [2 * n, n];
  const random = seededRandom(1000 + n);
  const q = randomTensor([SEQ, hq, D], random);
  const k = randomTensor([SEQ, hkv, D], random);
  const v = randomTensor([SEQ, hkv, D], random);
  describe.each(MASKS.map((mask) => ({ mask, name: describeMask(mask) })))('$name', ({ mask }) => {
    const expected = referenceAttention(q, k, v, { kind: 'sequence', mask });
    // usp refuses documents and windows (usp.test.ts checks the refusal and its exactness without them).
    it.each(STRATEGY_NAMES.filter((name) => (name !== 'single' || n === 1) && name !== 'usp'))('%s matches the fp64 reference', async (name) => {
      const { result, ranks } = await runStrategyInproc(name, q, k, v, { ...mask, degree: n, kernels: [kernel], timeoutMs: 20_000 });
      expect(maxAbsDiff(result.out.data, expected.out)).toBeLessThanOrEqual(1e-4);
      expect(maxAbsDiff(result.lse.data, expected.lse)).toBeLessThanOrEqual(1e-3);
      // Every visible pair is computed once, by some rank (Ulysses: once per head group, i.e. by every rank).
      const pairs = ranks.reduce((sum, rank) => sum + rank.visiblePairs, 0);
      expect(pairs).toBe(sequencePairs(SEQ, mask) * (name === 'ulysses' ? n : 1));
    });
  });
});

// A window long enough that the blocks hold interior strips (a dense core between two masked fringes, one kernel
// call each), beside documents of 1 and 2 tokens, on a length no strip divides.
describe('window 1024 over documents of 1, 2 and 4097 tokens, N = 2', () => {
  const mask: SequenceMask = { causal: true, documents: [1, 2, 4097], window: 1024 };
  const random = seededRandom(4100);
  const [q, k, v] = [randomTensor([4100, 4, D], random), randomTensor([4100, 2, D], random), randomTensor([4100, 2, D], random)];
  const expected = referenceAttention(q, k, v, { kind: 'sequence', mask });
  it.each(['ring', 'zigzag', 'striped'])('%s matches the fp64 reference', async (name) => {
    const { result } = await runStrategyInproc(name, q, k, v, { ...mask, degree: 2, kernels: [kernel], timeoutMs: 60_000 });
    expect(maxAbsDiff(result.out.data, expected.out)).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(result.lse.data, expected.lse)).toBeLessThanOrEqual(1e-3);
  });
});
