import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomTensor, seededRandom, type BlockAttentionKernel } from '@seqpar/core';
import { createAttentionKernel } from '@seqpar/kernels';
import { runStrategyInproc } from '../src/index.js';
import { zigzagBlocks } from '../src/zigzag.js';
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
  // S = 40 splits evenly over 4 ranks, so every forwarded KV block is 10 rows of K and V.
  const kvBlockBytes = 2 * (seq / n) * hkv * d * floatBytes;

  it.each(['striped', 'zigzag'] as const)('%s: every rank sends N-1 KV blocks of its ring neighbours', async (name) => {
    const { ranks: stats, framesSent } = await runInproc(name, kernel, q, k, v, true, n);
    for (let rank = 0; rank < n; rank++) {
      expect(framesSent[rank]).toBe(n - 1);
      expect(stats[rank]!.bytesSent).toBe((n - 1) * kvBlockBytes);
      expect(stats[rank]!.bytesRecv).toBe((n - 1) * kvBlockBytes);
    }
  });

  it('ring, causal: KV travels only to later ranks, so rank r forwards r + 1 blocks and the last rank none', async () => {
    const { ranks: stats, framesSent } = await runInproc('ring', kernel, q, k, v, true, n);
    expect(framesSent).toEqual([1, 2, 3, 0]);
    expect(stats.map((rank) => rank.bytesRecv)).toEqual([0, 1, 2, 3].map((frames) => frames * kvBlockBytes));
  });

  it('zigzag over packed documents dealt whole: nothing travels', async () => {
    const { ranks: stats, framesSent } = await runStrategyInproc('zigzag', q, k, v, { causal: true, documents: Array(8).fill(5), degree: n, kernels: [kernel] });
    expect(framesSent).toEqual([0, 0, 0, 0]);
    expect(stats.map((rank) => rank.visiblePairs)).toEqual(Array(n).fill(2 * 15));
  });

  it('token-ring: N-1 query hops plus one partial per owner with work on this rank', async () => {
    for (const causal of [false, true]) {
      const { ranks: stats, framesSent } = await runInproc('token-ring', kernel, q, k, v, causal, n);
      for (let rank = 0; rank < n; rank++) {
        const partials = Array.from({ length: n - 1 }, (_, i) => i + 1).filter((step) => {
          const owner = (rank + step) % n;
          return zigzagBlocks({ seq, n, causal }, owner, rank).length > 0;
        }).length;
        expect(framesSent[rank]).toBe(n - 1 + partials);
        // Each hop carries the 10 queries in hand; each partial their out [10, Hq, D] and lse [Hq, 10].
        const rows = seq / n;
        expect(stats[rank]!.bytesSent).toBe(((n - 1) * rows * hq * d + partials * (rows * hq * d + hq * rows)) * floatBytes);
      }
    }
  });

  it('ulysses: two all-to-alls, 2(N-1) frames per rank, each a peer share of heads', async () => {
    const { ranks: stats, framesSent } = await runInproc('ulysses', kernel, q, k, v, false, 2);
    expect(framesSent).toEqual([2, 2]);
    // Out: this rank's 20 tokens of the peer's heads (q 2 heads, k and v 1 each); back: the peer's 20 tokens'
    // out and lse for this rank's 2 query heads.
    const [rows, hqShare, hkvShare] = [seq / 2, hq / 2, hkv / 2];
    const bytes = (rows * (hqShare + 2 * hkvShare) * d + rows * hqShare * d + hqShare * rows) * floatBytes;
    expect(stats.map((rank) => rank.bytesSent)).toEqual([bytes, bytes]);
    expect(stats.map((rank) => rank.bytesRecv)).toEqual([bytes, bytes]);
  });
});

describe('refusals', () => {
  it('ulysses refuses a degree that does not divide the kv heads', async () => {
    await expect(runInproc('ulysses', kernel, q, k, v, false, 3)).rejects.toMatchObject({ code: 'ERR_USAGE', message: expect.stringMatching(/kv heads/) });
  });
});
