import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, type Cluster } from '../src/api/cluster.js';
import { expectExact, problem } from './attention-check.js';

describe('createCluster (inproc executor)', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await createCluster({ workers: 3, transport: 'inproc', maxQueue: 4, requestTimeoutMs: 20_000 });
  });
  afterAll(() => cluster.close());

  it.each([
    ['single', false],
    ['ring', true],
    ['zigzag', true],
    ['striped', false],
  ] as const)('%s attention (causal %s) matches the fp64 reference', async (strategy, causal) => {
    const p = problem(48, 4, 2);
    const result = await cluster.attention(p.q, p.k, p.v, { strategy, causal });
    expectExact(p, result, causal);
    expect(result.stats).toMatchObject({ strategy, workers: strategy === 'single' ? 1 : 3, transport: 'inproc', seq: 48 });
  });

  it('reports per-rank stats in the shape --json needs', async () => {
    const p = problem(64);
    const { stats } = await cluster.attention(p.q, p.k, p.v, { strategy: 'striped', causal: true });
    expect(stats.ranks.map((rank) => rank.rank)).toEqual([0, 1, 2]);
    for (const rank of stats.ranks) {
      expect(Object.keys(rank).sort()).toEqual(['bytesRecv', 'bytesSent', 'commMs', 'computeMs', 'idleMs', 'peakRssMb', 'rank', 'visiblePairs', 'workspacePeakMb']);
      expect(rank.visiblePairs).toBeGreaterThan(0);
      expect(rank.bytesSent).toBeGreaterThan(0);
      expect(rank.computeMs).toBeGreaterThan(0);
      expect(rank.peakRssMb).toBeGreaterThan(0);
    }
    expect(stats.wallMs).toBeGreaterThan(0);
  });

  it('all-gathers a checksum over the data plane', async () => {
    const parts = [new Float32Array([1, 2]), new Float32Array([3]), new Float32Array([0.5, 0.5, 4])];
    expect(await cluster.allGatherChecksum(parts)).toEqual([
      [3, 3, 5],
      [3, 3, 5],
      [3, 3, 5],
    ]);
  });

  it('refuses a request beyond maxQueue with ERR_BUSY and still serves the rest', async () => {
    const p = problem(32);
    const settled = await Promise.allSettled(Array.from({ length: 8 }, () => cluster.attention(p.q, p.k, p.v, { strategy: 'ring' })));
    const refused = settled.filter((s) => s.status === 'rejected');
    expect(refused.length).toBe(3); // one in flight, four waiting
    for (const s of refused) expect((s as PromiseRejectedResult).reason.code).toBe('ERR_BUSY');
  });

  it('aborts a waiting request and a running one, then serves the next', async () => {
    const p = problem(256, 4, 4, 32);
    const running = new AbortController();
    const waiting = new AbortController();
    const first = cluster.attention(p.q, p.k, p.v, { strategy: 'ring', signal: running.signal });
    const second = cluster.attention(p.q, p.k, p.v, { strategy: 'ring', signal: waiting.signal });
    waiting.abort();
    running.abort();
    await expect(second).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    await expect(first).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    const small = problem(16);
    expectExact(small, await cluster.attention(small.q, small.k, small.v, { strategy: 'ring' }), false);
  });

  it('times a request out with ERR_TIMEOUT', async () => {
    const p = problem(512, 4, 4, 64);
    await expect(cluster.attention(p.q, p.k, p.v, { strategy: 'ring', timeoutMs: 1 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
  });

  it('rejects an unknown strategy and a bad worker count as usage errors', async () => {
    const p = problem(8);
    await expect(cluster.attention(p.q, p.k, p.v, { strategy: 'nope' as 'ring' })).rejects.toMatchObject({ code: 'ERR_USAGE' });
    await expect(createCluster({ workers: 0 })).rejects.toMatchObject({ code: 'ERR_USAGE' });
  });

  it('refuses a burst bound that is not a positive integer before any worker starts', async () => {
    for (const maxBurstSteps of [0, 2.5, -1]) {
      await expect(createCluster({ workers: 1, maxBurstSteps })).rejects.toMatchObject({ code: 'ERR_USAGE', message: expect.stringContaining('maxBurstSteps') });
    }
  });
});
