import { createPartial } from '@seqpar/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, type Cluster } from '../src/api/cluster.js';
import { ResultMemory } from '../src/worker/result-memory.js';
import { expectExact, problem } from './attention-check.js';

describe('a worker reusing the memory of its last request (inputs and result)', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await createCluster({ workers: 2, transport: 'shm', requestTimeoutMs: 30_000 });
  });
  afterAll(() => cluster.close());

  it('answers back-to-back requests of one shape, then another, each exactly', async () => {
    const runs = [
      { seq: 96, seed: 1, mask: { causal: true, documents: [1, 2, 61, 32] }, strategy: 'zigzag' },
      { seq: 96, seed: 2, mask: { causal: true, documents: [1, 2, 61, 32] }, strategy: 'zigzag' },
      { seq: 96, seed: 3, mask: { causal: true, window: 7 }, strategy: 'ring' },
      { seq: 96, seed: 4, mask: { causal: false }, strategy: 'single' },
      { seq: 96, seed: 5, mask: { causal: false }, strategy: 'single' },
      { seq: 50, seed: 6, mask: { causal: true, documents: [47, 3] }, strategy: 'striped' },
      { seq: 96, seed: 7, mask: { causal: true }, strategy: 'zigzag' },
    ] as const;
    for (const { seq, seed, mask, strategy } of runs) {
      const p = problem(seq, 4, 2, 16, seed);
      expectExact(p, await cluster.attention(p.q, p.k, p.v, { strategy, ...mask }), mask);
    }
  });
});

describe('ResultMemory', () => {
  it('makes accumulators as createPartial does, reusing the memory of one it made once that was given back', () => {
    const memory = new ResultMemory();
    const first = memory.createPartial(3, 2, 4);
    expect(first).toEqual(createPartial(3, 2, 4));
    first.out.data.fill(7);
    first.lse.data.fill(1);
    memory.give(first);
    const second = memory.createPartial(3, 2, 4);
    expect(second.out.data.buffer).toBe(first.out.data.buffer);
    expect(second).toEqual(createPartial(3, 2, 4)); // out 0 and every lse masked again
    memory.give(createPartial(3, 2, 4)); // not made here: not taken
    memory.give(second);
    const other = memory.createPartial(5, 2, 4); // another size: fresh memory
    expect(other.out.data.buffer).not.toBe(second.out.data.buffer);
  });
});
