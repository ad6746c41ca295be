import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RankRecorder, randomTensor, referenceAttention, seededRandom, type BlockAttentionKernel, type Tensor } from '@seqpar/core';
import { createAttentionKernel } from '@seqpar/kernels';
import { createInprocGroup } from '@seqpar/transport';
import { gatherDecodePartials, type RankContext } from '../src/index.js';
import { maxAbsDiff } from './harness.js';

let kernel: BlockAttentionKernel;
beforeAll(async () => {
  kernel = await createAttentionKernel({ threads: 1 });
});
afterAll(async () => kernel?.close());

const rows = (t: Tensor, picks: number[]): Tensor => {
  const width = t.data.length / t.shape[0]!;
  const data = new Float32Array(picks.length * width);
  picks.forEach((row, i) => data.set(t.data.subarray(row * width, (row + 1) * width), i * width));
  return { data, shape: [picks.length, ...t.shape.slice(1)] };
};

/** A sharded cache: rank r keeps every row with (row * 7) % n === r, except that rank n-1 keeps nothing when n > 2. */
function shardedCase(n: number) {
  const [cached, fresh, hq, hkv, d] = [23, 3, 6, 2, 16];
  const total = cached + fresh;
  const random = seededRandom(n);
  const k = randomTensor([total, hkv, d], random);
  const v = randomTensor([total, hkv, d], random);
  const q = randomTensor([fresh, hq, d], random);
  const owners = Array.from({ length: total }, (_, row) => (n > 2 ? (row * 7) % (n - 1) : (row * 7) % n));
  const shares: { k: Tensor; v: Tensor; positions: Int32Array }[] = Array.from({ length: n }, (_, rank) => {
    const picks = owners.flatMap((owner, row) => (owner === rank ? [row] : []));
    return { k: rows(k, picks), v: rows(v, picks), positions: Int32Array.from(picks) };
  });
  const positions = Int32Array.from({ length: fresh }, (_, i) => cached + i);
  const expected = referenceAttention(q, k, v, { kind: 'positions', queryPositions: positions, keyPositions: Int32Array.from({ length: total }, (_, i) => i) });
  return { q, positions, shares, expected };
}

/** Runs `work` on every rank of an in-process group of n. */
async function onRanks<T>(n: number, work: (ctx: RankContext) => Promise<T>): Promise<T[]> {
  const transports = createInprocGroup(n);
  try {
    return await Promise.all(
      transports.map((transport, rank) => work({ rank, worldSize: n, transport, kernel, recorder: new RankRecorder(rank), tagPrefix: 'd/', timeoutMs: 10_000 })),
    );
  } finally {
    await Promise.all(transports.map((t) => t.close()));
  }
}

describe('decode over a sharded KV cache', () => {
  it.each([1, 2, 3, 5])('with the queries on every rank, gathers partials so every rank holds the same full attention (N = %i)', async (n) => {
    const { q, positions, shares, expected } = shardedCase(n);
    const results = await onRanks(n, async (ctx) => {
      const share = shares[ctx.rank]!;
      const local = await kernel.attend(q, share.k, share.v, { kind: 'positions', queryPositions: positions, keyPositions: share.positions });
      return gatherDecodePartials(ctx, local);
    });
    for (const merged of results) {
      expect(maxAbsDiff(merged.out.data, expected.out)).toBeLessThanOrEqual(1e-5);
      expect(maxAbsDiff(merged.lse.data, expected.lse)).toBeLessThanOrEqual(1e-4);
      expect(merged.out.data).toEqual(results[0]!.out.data); // merged in rank order everywhere: the same bits
    }
  });
});
