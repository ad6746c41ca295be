import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomTensor, seededRandom, type BlockAttentionKernel, type Tensor } from '@seqpar/core';
import { createAttentionKernel } from '@seqpar/kernels';
import { createTransport, startRendezvous } from '@seqpar/transport';
import { runStrategyInproc, type StrategyName } from '../src/index.js';
import { maxAbsDiff } from './harness.js';

let kernel: BlockAttentionKernel;
beforeAll(async () => {
  kernel = await createAttentionKernel({ threads: 1 });
});
afterAll(async () => kernel?.close());

const HEAD_DIM = 8;
const floatBytes = 4;

function inputs(seq: number, hq: number, hkv: number, seed: number): [Tensor, Tensor, Tensor] {
  const random = seededRandom(seed);
  return [randomTensor([seq, hq, HEAD_DIM], random), randomTensor([seq, hkv, HEAD_DIM], random), randomTensor([seq, hkv, HEAD_DIM], random)];
}

const run = (name: StrategyName, [q, k, v]: [Tensor, Tensor, Tensor], causal: boolean, degree: number, ulyssesDegree?: number) =>
  runStrategyInproc(name, q, k, v, { causal, degree, kernels: [kernel], timeoutMs: 20_000, ...(ulyssesDegree === undefined ? {} : { ulyssesDegree }) });

const divisorsOf = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1).filter((u) => n % u === 0);

describe.each([2, 4, 6, 8])('usp on N = %i', (n) => {
  // kv heads = N lets every U that divides N run; two query heads per kv head (GQA).
  const [hq, hkv] = [2 * n, n];
  describe.each([false, true])('causal %s', (causal) => {
    // 997 is prime: no chunk boundary of any layout falls evenly; 5 tokens leave ranks empty.
    describe.each([997, 5])('S = %i', (seq) => {
      const tensors = inputs(seq, hq, hkv, seq + 13 * n + Number(causal));
      it.each(divisorsOf(n))('U = %i equals the single-device kernel', async (u) => {
        const expected = await kernel.attend(...tensors, { kind: causal ? 'causal-inclusive' : 'none' });
        const { result } = await run('usp', tensors, causal, n, u);
        expect(maxAbsDiff(result.out.data, expected.out.data)).toBeLessThanOrEqual(1e-4);
        expect(maxAbsDiff(result.lse.data, expected.lse.data)).toBeLessThanOrEqual(1e-3);
      });
    });

    it('U = N computes what ulysses computes and U = 1 what zigzag computes, bit for bit', async () => {
      const tensors = inputs(997, hq, hkv, 7 * n);
      const [asUlysses, ulysses, asZigzag, zigzag] = await Promise.all([
        run('usp', tensors, causal, n, n),
        run('ulysses', tensors, causal, n),
        run('usp', tensors, causal, n, 1),
        run('zigzag', tensors, causal, n),
      ]);
      expect(asUlysses.result.out.data).toEqual(ulysses.result.out.data);
      expect(asUlysses.result.lse.data).toEqual(ulysses.result.lse.data);
      expect(asZigzag.result.out.data).toEqual(zigzag.result.out.data);
      expect(asZigzag.result.lse.data).toEqual(zigzag.result.lse.data);
    });
  });
});

describe('usp messages and bytes per rank follow the schedule', () => {
  it.each([
    [4, 2],
    [8, 2],
    [8, 4],
  ])('N = %i, U = %i: U-1 head frames, R-1 ring hops, U-1 result frames', async (n, u) => {
    const [hq, hkv, r] = [8, 4, n / u];
    // 16 tokens per rank: every zigzag chunk (of 2N) holds 8, so every share is the same size.
    const seq = 16 * n;
    const { ranks: stats, framesSent } = await run('usp', inputs(seq, hq, hkv, n + u), true, n, u);
    const [rows, groupRows, d] = [seq / n, (seq / n) * u, HEAD_DIM];
    const headsOut = rows * (hq / u + (2 * hkv) / u) * d;
    const ringHop = 2 * groupRows * (hkv / u) * d;
    const resultsOut = rows * (hq / u) * d + (hq / u) * rows;
    for (let rank = 0; rank < n; rank++) {
      expect(framesSent[rank]).toBe(2 * (u - 1) + (r - 1));
      expect(stats[rank]!.bytesSent).toBe(((u - 1) * (headsOut + resultsOut) + (r - 1) * ringHop) * floatBytes);
      expect(stats[rank]!.bytesRecv).toBe(stats[rank]!.bytesSent);
    }
  });
});

describe('usp over every transport, traced', () => {
  // 4 ranks as 2 groups of 2 over real sockets and shared-memory slots; S = 1031 makes uneven shares.
  const [seq, hq, hkv, n, u] = [1031, 8, 4, 4, 2];
  const [q, k, v] = inputs(seq, hq, hkv, 5);

  it.each(['inproc', 'ws', 'shm'] as const)('%s', async (kind) => {
    const token = `usp-${kind}-${Math.random()}`;
    const rendezvous = kind === 'inproc' ? undefined : await startRendezvous({ worldSize: n, token });
    const transports = rendezvous
      ? await Promise.all(Array.from({ length: n }, (_, rank) => createTransport(kind, { rank, worldSize: n, token, rendezvous: rendezvous.address })))
      : undefined;
    try {
      const expected = await kernel.attend(q, k, v, { kind: 'causal-inclusive' });
      const { result, spans } = await runStrategyInproc('usp', q, k, v, {
        causal: true,
        degree: n,
        ulyssesDegree: u,
        kernels: [kernel],
        timeoutMs: 20_000,
        traced: true,
        ...(transports ? { transports } : {}),
      });
      expect(maxAbsDiff(result.out.data, expected.out.data)).toBeLessThanOrEqual(1e-4);
      expect(maxAbsDiff(result.lse.data, expected.lse.data)).toBeLessThanOrEqual(1e-3);
      for (const rankSpans of spans) {
        const names = rankSpans.map((span) => span.name);
        for (const phase of [/^send heads → 1$|^send heads → 0$/, /^send kv\/0 → /, /^send back → /, /^attend /]) expect(names.some((name) => phase.test(name))).toBe(true);
      }
    } finally {
      await Promise.all((transports ?? []).map((transport) => transport.close()));
      await rendezvous?.close();
    }
  });
});

describe('usp refusals', () => {
  const tensors = inputs(40, 8, 4, 1);
  it.each([
    [8, 8], // more than the 4 kv heads
    [3, 6], // does not divide the kv heads
    [4, 6], // does not divide the ranks
  ])('U = %i on %i ranks is a usage error', async (u, n) => {
    await expect(run('usp', tensors, false, n, u)).rejects.toMatchObject({
      code: 'ERR_USAGE',
      message: expect.stringMatching(`ulysses degree \\(${u}\\) to divide the kv heads \\(4\\), query heads \\(8\\) and the worker count \\(${n}\\)`),
    });
  });

  it.each([{ documents: [30, 10] }, { window: 8 }])('usp with %o is a usage error, not a silently ignored mask', async (mask) => {
    const [q, k, v] = tensors;
    await expect(runStrategyInproc('usp', q, k, v, { causal: true, degree: 2, ulyssesDegree: 2, kernels: [kernel], timeoutMs: 20_000, ...mask })).rejects.toMatchObject({
      code: 'ERR_USAGE',
      message: expect.stringMatching(/usp does not take documents or a window/),
    });
  });

  it('usp without a ulysses degree is a usage error', async () => {
    await expect(run('usp', tensors, false, 4)).rejects.toMatchObject({ code: 'ERR_USAGE', message: expect.stringMatching(/ulysses degree/) });
  });
});
