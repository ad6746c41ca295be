import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomTensor, seededRandom, type BlockAttentionKernel, type PartialAttention, type Tensor } from '@seqpar/core';
import { createAttentionKernel } from '@seqpar/kernels';
import { maxAbsDiff, runInproc } from './harness.js';
import type { StrategyName } from '../src/index.js';

const DISTRIBUTED: StrategyName[] = ['ring', 'striped', 'zigzag', 'token-ring', 'ulysses'];
const WORKER_COUNTS = [1, 2, 3, 4, 8];
const HEAD_DIM = 8;

let kernel: BlockAttentionKernel;
beforeAll(async () => {
  kernel = await createAttentionKernel({ threads: 1 });
});
afterAll(async () => kernel?.close());

interface Case {
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  readonly causal: boolean;
  expected?: PartialAttention;
}

function makeCase(seq: number, hq: number, hkv: number, causal: boolean, seed: number): Case {
  const random = seededRandom(seed);
  return {
    q: randomTensor([seq, hq, HEAD_DIM], random),
    k: randomTensor([seq, hkv, HEAD_DIM], random),
    v: randomTensor([seq, hkv, HEAD_DIM], random),
    causal,
  };
}

/** The single-device kernel over the whole sequence: what every strategy must reproduce. */
async function expectedOf(c: Case): Promise<PartialAttention> {
  c.expected ??= await kernel.attend(c.q, c.k, c.v, { kind: c.causal ? 'causal-inclusive' : 'none' });
  return c.expected;
}

describe.each(WORKER_COUNTS)('N = %i workers', (n) => {
  // Ulysses shards heads, so kv heads = N keeps it runnable at every N; GQA uses 4 query heads per kv head.
  const headConfigs = [
    { hq: n, hkv: n },
    { hq: 4 * n, hkv: n },
  ];
  const lengths = [Math.max(n - 1, 1), 997, 4096];
  describe.each(lengths)('S = %i', (seq) => {
    describe.each([false, true])('causal %s', (causal) => {
      describe.each(headConfigs)('Hq $hq, Hkv $hkv', ({ hq, hkv }) => {
        const c = makeCase(seq, hq, hkv, causal, seq * 31 + n * 7 + hq + (causal ? 1 : 0));
        it.each(DISTRIBUTED)('%s equals the single-device kernel', async (name) => {
          const expected = await expectedOf(c);
          const { result } = await runInproc(name, kernel, c.q, c.k, c.v, c.causal, n);
          expect(maxAbsDiff(result.out.data, expected.out.data)).toBeLessThanOrEqual(1e-4);
          expect(maxAbsDiff(result.lse.data, expected.lse.data)).toBeLessThanOrEqual(1e-3);
        });
      });
    });
  });
});
