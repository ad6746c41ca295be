import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RankRecorder, randomTensor, referenceAttention, seededRandom, type BlockAttentionKernel, type Tensor } from '@seqpar/core';
import { createAttentionKernel } from '@seqpar/kernels';
import { createInprocGroup } from '@seqpar/transport';
import { passQDecode, type KvCacheShare } from '../src/index.js';
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

describe('pass-Q decode over a sharded KV cache', () => {
  it.each([1, 2, 3, 5])('equals full attention over the concatenated cache (N = %i, uneven shares, one empty)', async (n) => {
    const [cached, fresh, hq, hkv, d] = [23, 3, 6, 2, 16];
    const total = cached + fresh;
    const random = seededRandom(n);
    const k = randomTensor([total, hkv, d], random);
    const v = randomTensor([total, hkv, d], random);
    const q = randomTensor([fresh, hq, d], random);
    // Rank r keeps every cache row with (row * 7) % n === r, except that rank n-1 keeps nothing when n > 2.
    const owners = Array.from({ length: total }, (_, row) => (n > 2 ? (row * 7) % (n - 1) : (row * 7) % n));
    const shares: KvCacheShare[] = Array.from({ length: n }, (_, rank) => {
      const picks = owners.flatMap((owner, row) => (owner === rank ? [row] : []));
      return { k: rows(k, picks), v: rows(v, picks), positions: Int32Array.from(picks) };
    });
    const positions = Int32Array.from({ length: fresh }, (_, i) => cached + i);
    const owner = n - 1;
    const transports = createInprocGroup(n);
    const results = await Promise.all(
      shares.map((share, rank) =>
        passQDecode(
          { rank, worldSize: n, transport: transports[rank]!, kernel, recorder: new RankRecorder(rank), tagPrefix: 'd/', timeoutMs: 10_000 },
          rank === owner ? { owner, q, positions } : { owner },
          share,
        ),
      ),
    );
    await Promise.all(transports.map((t) => t.close()));
    const expected = referenceAttention(q, k, v, { kind: 'positions', queryPositions: positions, keyPositions: Int32Array.from({ length: total }, (_, i) => i) });
    const merged = results[owner]!;
    expect(results.filter((result) => result !== undefined)).toHaveLength(1);
    expect(maxAbsDiff(merged.out.data, expected.out)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(merged.lse.data, expected.lse)).toBeLessThanOrEqual(1e-4);
  });
});
