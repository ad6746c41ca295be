import { describe, expect, it } from 'vitest';
import { createCluster } from '../src/api/cluster.js';
import { expectExact, problem } from './attention-check.js';
import { expectAllGone, isAlive, killAll } from './processes.js';

process.env.SEQPAR_LOG_LEVEL = 'silent';

describe('createCluster with links and faults', () => {
  it('runs over shaped links: exact, and every ring step pays the latency', async () => {
    const cluster = await createCluster({ workers: 3, links: { latencyMs: 25, bytesPerSecond: 200e6 } });
    try {
      const p = problem(60, 6, 3);
      const result = await cluster.attention(p.q, p.k, p.v, { strategy: 'ring', causal: true });
      expectExact(p, result, true);
      expect(result.stats.wallMs).toBeGreaterThanOrEqual(2 * 25); // two hops of KV, one after the other
    } finally {
      await cluster.close();
    }
  });

  it('fails a corrupted KV frame with ERR_CORRUPT_FRAME naming the ranks, then serves the next request exactly', async () => {
    // Rank 0's first send is its KV block to rank 1.
    const cluster = await createCluster({ workers: 3, faults: { faults: [{ kind: 'corrupt', rank: 0, at: 1 }], seed: 1 }, requestTimeoutMs: 5000 });
    try {
      const p = problem(48, 6, 3);
      await expect(cluster.attention(p.q, p.k, p.v, { strategy: 'ring' })).rejects.toMatchObject({
        code: 'ERR_CORRUPT_FRAME',
        message: expect.stringMatching(/rank 1: .*from rank 0 is corrupt/),
      });
      expectExact(p, await cluster.attention(p.q, p.k, p.v, { strategy: 'ring' }), false);
    } finally {
      await cluster.close();
    }
  });

  it('kills a worker process at its k-th send: ERR_PEER_LOST naming it, and a clean replacement serves on', async () => {
    const cluster = await createCluster({ workers: 2, transport: 'ws', faults: { faults: [{ kind: 'kill', rank: 1, at: 1 }] }, healthTimeoutMs: 500, requestTimeoutMs: 5000 });
    const first = cluster.pids();
    try {
      const p = problem(40, 4, 2);
      await expect(cluster.attention(p.q, p.k, p.v, { strategy: 'zigzag', causal: true })).rejects.toMatchObject({
        code: 'ERR_PEER_LOST',
        message: expect.stringMatching(/rank 1 was lost/),
      });
      await expectAllGone([first[1]!]);
      expectExact(p, await cluster.attention(p.q, p.k, p.v, { strategy: 'zigzag', causal: true }), true);
      expect(isAlive(cluster.pids()[1]!)).toBe(true);
    } finally {
      const pids = [...first, ...cluster.pids()];
      await cluster.close();
      await expectAllGone(pids).finally(() => killAll(pids));
    }
  });

  it('refuses faults on ranks it does not have, and links or faults for external workers', async () => {
    await expect(createCluster({ workers: 2, faults: { faults: [{ kind: 'drop', rank: 2, at: 1 }] } })).rejects.toMatchObject({ code: 'ERR_USAGE' });
    await expect(createCluster({ workers: 2, links: { latencyMs: -5 } })).rejects.toMatchObject({ code: 'ERR_USAGE' });
    await expect(createCluster({ workers: 2, transport: 'ws', coordinator: '127.0.0.1:0', token: 't', links: { latencyMs: 1 } })).rejects.toMatchObject({ code: 'ERR_USAGE' });
  });
});
