import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planBlocks, randomTensor, seededRandom, type BlockAttentionKernel } from '@seqpar/core';
import { createAttentionKernel } from '@seqpar/kernels';
import { runInproc } from './harness.js';

let kernel: BlockAttentionKernel;
beforeAll(async () => {
  kernel = await createAttentionKernel({ threads: 1 });
});
afterAll(async () => kernel?.close());

const [seq, hq, hkv, d, n] = [40, 4, 2, 8, 4];
const random = seededRandom(3);
const q = randomTensor([seq, hq, d], random);
const k = randomTensor([seq, hkv, d], random);
const v = randomTensor([seq, hkv, d], random);
const floatBytes = 4;

describe('messages and bytes per rank follow each schedule', () => {
  it.each(['ring', 'striped', 'zigzag'] as const)('%s: every rank sends N-1 KV blocks of its ring neighbours', async (name) => {
    const { ranks: stats, framesSent } = await runInproc(name, kernel, q, k, v, true, n);
    // S = 40 splits evenly over 4 ranks, so every forwarded KV block is 10 rows of K and V.
    const kvBlockBytes = 2 * (seq / n) * hkv * d * floatBytes;
    for (let rank = 0; rank < n; rank++) {
      expect(framesSent[rank]).toBe(n - 1);
      expect(stats[rank]!.bytesSent).toBe((n - 1) * kvBlockBytes);
      expect(stats[rank]!.bytesRecv).toBe((n - 1) * kvBlockBytes);
    }
  });

  it('token-ring: N-1 query hops plus one partial per owner with work on this rank', async () => {
    for (const causal of [false, true]) {
      const { framesSent } = await runInproc('token-ring', kernel, q, k, v, causal, n);
      for (let rank = 0; rank < n; rank++) {
        const partials = Array.from({ length: n - 1 }, (_, i) => i + 1).filter((step) => {
          const owner = (rank + step) % n;
          return planBlocks('zigzag', causal, seq, n, owner, (owner - rank + n) % n).length > 0;
        }).length;
        expect(framesSent[rank]).toBe(n - 1 + partials);
      }
    }
  });

  it('ulysses: two all-to-alls, 2(N-1) frames per rank', async () => {
    const { framesSent } = await runInproc('ulysses', kernel, q, k, v, false, 2);
    expect(framesSent).toEqual([2, 2]);
  });
});

describe('refusals', () => {
  it('ulysses refuses a degree that does not divide the kv heads', async () => {
    await expect(runInproc('ulysses', kernel, q, k, v, false, 3)).rejects.toMatchObject({ code: 'ERR_USAGE', message: expect.stringMatching(/kv heads/) });
  });
});
