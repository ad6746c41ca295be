import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCluster, type Cluster } from '../src/api/cluster.js';
import { expectExact, problem } from './attention-check.js';
import { expectAllGone, holdEventLoop, isAlive, killAll } from './processes.js';

const HEALTH_MS = 2000;
// Long enough (a few hundred ms of kernel time per rank on 2 cores) that a fault lands mid-request.
const big = problem(4096, 2, 2, 128);

describe('local worker processes (ProcessExecutor)', () => {
  let cluster: Cluster;
  let seen: number[] = [];
  beforeEach(async () => {
    cluster = await createCluster({ workers: 2, transport: 'ws', healthTimeoutMs: HEALTH_MS, requestTimeoutMs: 30_000, maxQueue: 40 });
    seen = cluster.pids();
  });
  afterEach(async () => {
    seen.push(...cluster.pids());
    await cluster.close();
    await expectAllGone(seen).finally(() => killAll(seen));
  });

  async function faultMidRequest(fault: (pid: number) => void): Promise<void> {
    const victim = cluster.pids()[1]!;
    const request = cluster.attention(big.q, big.k, big.v, { strategy: 'ring' });
    request.catch(() => undefined);
    await sleep(150);
    const faultedAt = Date.now();
    fault(victim);
    const error = await request.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    const elapsed = Date.now() - faultedAt;
    expect(error).toMatchObject({ code: expect.stringMatching(/^ERR_(PEER_LOST|TIMEOUT)$/), message: expect.stringMatching(/\brank 1\b/) });
    expect(elapsed).toBeLessThan(HEALTH_MS + 500);
    await expectAllGone([victim]);
    const next = problem(64, 2, 1, 16);
    expectExact(next, await cluster.attention(next.q, next.k, next.v, { strategy: 'ring', causal: true }), true);
    const respawned = cluster.pids()[1]!;
    expect(respawned).not.toBe(victim);
    expect(isAlive(respawned)).toBe(true);
    seen.push(victim);
  }

  it('serves ring attention exactly from two processes', async () => {
    const p = problem(96, 4, 2, 16);
    const result = await cluster.attention(p.q, p.k, p.v, { strategy: 'zigzag', causal: true });
    expectExact(p, result, true);
    expect(result.stats.ranks.map((rank) => rank.rank)).toEqual([0, 1]);
    expect(result.stats.ranks.every((rank) => rank.bytesSent > 0 && rank.bytesRecv > 0)).toBe(true);
  });

  it('fails a request within the bound when a worker is killed (-9), then respawns it', async () => {
    await faultMidRequest((pid) => process.kill(pid, 'SIGKILL'));
  });

  it('fails a request within the bound when a worker stalls (SIGSTOP), then replaces it', async () => {
    await faultMidRequest((pid) => process.kill(pid, 'SIGSTOP'));
  });

  it('keeps its workers through a caller that holds the event loop past the health timeout', async () => {
    const p = problem(64, 2, 1, 16);
    expectExact(p, await cluster.attention(p.q, p.k, p.v, { strategy: 'ring', causal: true }), true);
    const pids = cluster.pids();
    holdEventLoop(HEALTH_MS + 500); // the caller's own synchronous work: no ping is answered meanwhile
    expectExact(p, await cluster.attention(p.q, p.k, p.v, { strategy: 'ring', causal: true }), true);
    expect(cluster.pids()).toEqual(pids);
  });

  it('answers 100 queued requests of mixed sizes exactly once each, or refuses them with ERR_BUSY', async () => {
    const problems = Array.from({ length: 100 }, (_, i) => problem(8 + ((i * 37) % 120), 2, 1, 8, i));
    const settled = await Promise.allSettled(problems.map((p, i) => cluster.attention(p.q, p.k, p.v, { strategy: i % 2 ? 'ring' : 'single', causal: i % 3 === 0 })));
    let served = 0;
    settled.forEach((outcome, i) => {
      if (outcome.status === 'rejected') return expect(outcome.reason).toMatchObject({ code: 'ERR_BUSY' });
      served++;
      expectExact(problems[i]!, outcome.value, i % 3 === 0); // its own answer, not another request's
    });
    expect(served).toBe(41); // one in flight plus maxQueue waiting
  });
});
