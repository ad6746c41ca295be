import { randomTensor, seededRandom, type Tensor } from '@seqpar/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, type Cluster } from '../src/api/cluster.js';
import { expectExact, problem } from './attention-check.js';

const random = seededRandom(7);
const t = (...shape: number[]): Tensor => randomTensor(shape, random);

/** Mismatched requests the library once ran silently (wrong results) or that reset every worker. */
const BAD_REQUESTS: [string, () => [Tensor, Tensor, Tensor], object, RegExp][] = [
  ['k, v with more rows than q', () => [t(500, 2, 16), t(700, 1, 16), t(700, 1, 16)], {}, /q has 500 rows and k, v have 700/],
  ['ulysses with head dims 32 (q) and 16 (k, v)', () => [t(64, 2, 32), t(64, 2, 16), t(64, 2, 16)], { strategy: 'ulysses' }, /head dim of q \(32\) and k \(16\)/],
  ['k and v of different shapes', () => [t(64, 2, 16), t(64, 1, 16), t(64, 2, 16)], {}, /same shape/],
  ['query heads not a multiple of kv heads', () => [t(64, 3, 16), t(64, 2, 16), t(64, 2, 16)], {}, /multiple of kv heads/],
  ['data shorter than its shape', () => [{ data: new Float32Array(10), shape: [64, 2, 16] }, t(64, 1, 16), t(64, 1, 16)], {}, /holds 10/],
  ['a 2-D q', () => [t(64, 32), t(64, 1, 16), t(64, 1, 16)], {}, /3-D/],
  ['ulysses over more ranks than kv heads', () => [t(64, 2, 16), t(64, 1, 16), t(64, 1, 16)], { strategy: 'ulysses' }, /kv heads/i],
  ['an unknown strategy', () => [t(64, 2, 16), t(64, 1, 16), t(64, 1, 16)], { strategy: 'spiral' }, /unknown strategy 'spiral'/],
  ['a negative timeout', () => [t(64, 2, 16), t(64, 1, 16), t(64, 1, 16)], { timeoutMs: -5 }, /timeoutMs/],
  ['documents that do not add up to S', () => [t(64, 2, 16), t(64, 1, 16), t(64, 1, 16)], { documents: [30, 30] }, /sum to 60 but the sequence has 64/],
  ['a document of length 0', () => [t(64, 2, 16), t(64, 1, 16), t(64, 1, 16)], { documents: [32, 0, 32] }, /whole numbers >= 1/],
  ['a window without causal', () => [t(64, 2, 16), t(64, 1, 16), t(64, 1, 16)], { window: 8 }, /needs causal/],
  ['a window of 0', () => [t(64, 2, 16), t(64, 1, 16), t(64, 1, 16)], { causal: true, window: 0 }, /window must be a whole number >= 1/],
];

describe('every request is checked at the door of a worker-process cluster', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await createCluster({ workers: 2, transport: 'shm' });
  });
  afterAll(() => cluster?.close());

  it.each(BAD_REQUESTS)('refuses %s with a typed usage error, and the workers stay up', async (_, tensors, options, message) => {
    const pids = cluster.pids();
    const [q, k, v] = tensors();
    const refused = await cluster.attention(q, k, v, options).catch((error: unknown) => error);
    expect(refused).toMatchObject({ exitCode: 2 });
    expect((refused as Error).message).toMatch(message);
    expect(['ERR_SHAPE_MISMATCH', 'ERR_USAGE']).toContain((refused as { code: string }).code);
    // No reset: the same worker processes answer the next request, exactly.
    const p = problem(96, 4, 2, 16);
    expectExact(p, await cluster.attention(p.q, p.k, p.v, { strategy: 'zigzag', causal: true }), true);
    expect(cluster.pids()).toEqual(pids);
  });
});

describe('packed documents and a sliding window on worker processes', () => {
  it("reach every rank and come back exact, with each rank's visible pairs", async () => {
    const cluster = await createCluster({ workers: 2, transport: 'shm' });
    try {
      const p = problem(150, 4, 2, 16);
      const mask = { causal: true, documents: [1, 97, 2, 31, 19], window: 23 };
      for (const strategy of ['zigzag', 'ring', 'ulysses'] as const) {
        const result = await cluster.attention(p.q, p.k, p.v, { ...mask, strategy });
        expectExact(p, result, mask);
        expect(result.stats.ranks.every((rank) => rank.visiblePairs > 0)).toBe(true);
      }
    } finally {
      await cluster.close();
    }
  });
});

describe('deadlines compose', () => {
  it('a request timeout shorter than twice the health timeout still gives every rank the time the request has', async () => {
    // Ranks once got max(1, timeout - 2 x health) = 1 ms here, so every request failed.
    const cluster = await createCluster({ workers: 2, transport: 'inproc', requestTimeoutMs: 3000, healthTimeoutMs: 2000 });
    try {
      const p = problem(256, 4, 2, 16);
      for (const strategy of ['ring', 'ulysses', 'token-ring'] as const) expectExact(p, await cluster.attention(p.q, p.k, p.v, { strategy, causal: true }), true);
    } finally {
      await cluster.close();
    }
  });
});
