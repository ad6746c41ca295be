import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomTensor, seededRandom, shardLength, type BlockAttentionKernel } from '@seqpar/core';
import { createAttentionKernel } from '@seqpar/kernels';
import { STRATEGIES, type StrategyName } from '../src/index.js';
import { maxAbsDiff, runInproc } from './harness.js';

// Schedules where some ranks hold no tokens at all still run every step (their sends are empty blocks) and give
// the exact result. Zigzag and token-ring cut S into 2N chunks, so S < 2N leaves several ranks empty.
const DISTRIBUTED: StrategyName[] = ['ring', 'striped', 'zigzag', 'token-ring', 'ulysses'];
const d = 8;

let kernel: BlockAttentionKernel;
beforeAll(async () => {
  kernel = await createAttentionKernel({ threads: 1 });
});
afterAll(async () => kernel?.close());

describe.each([
  { seq: 3, n: 4 },
  { seq: 5, n: 8 },
])('S = $seq on N = $n ranks', ({ seq, n }) => {
  const random = seededRandom(seq * 100 + n);
  // Ulysses shards heads: N kv heads keep it runnable; 2 query heads per kv head exercise GQA.
  const [hq, hkv] = [2 * n, n];
  const q = randomTensor([seq, hq, d], random);
  const k = randomTensor([seq, hkv, d], random);
  const v = randomTensor([seq, hkv, d], random);

  describe.each([false, true])('causal %s', (causal) => {
    it.each(DISTRIBUTED)('%s: a rank without tokens, and still the single-device result', async (name) => {
      const lengths = Array.from({ length: n }, (_, rank) => shardLength(STRATEGIES[name].layout, seq, n, rank));
      expect(lengths).toContain(0);
      const expected = await kernel.attend(q, k, v, { kind: causal ? 'causal-inclusive' : 'none' });
      const { result } = await runInproc(name, kernel, q, k, v, causal, n);
      expect(maxAbsDiff(result.out.data, expected.out.data)).toBeLessThanOrEqual(1e-4);
      expect(maxAbsDiff(result.lse.data, expected.lse.data)).toBeLessThanOrEqual(1e-3);
    });
  });
});
