import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RankRecorder, randomTensor, seededRandom, type BlockAttentionKernel, type PartialAttention } from '@seqpar/core';
import { createAttentionKernel } from '@seqpar/kernels';
import { createTransport, startRendezvous, type Frame, type RecvOptions, type RendezvousServer, type Transport } from '@seqpar/transport';
import { gatherDecodePartials, runStrategyInproc, type StrategyName } from '../src/index.js';

// Real shm endpoints of three ranks, with rings of only two slots per link: a strategy that forgets to release
// one received frame per request starves its sender's ring within two requests, after which every frame travels
// inline on the socket (the sender waits slotWaitMs for a slot first). The spy below sees which path each
// received frame took: a slot-backed frame carries release(), a socket frame does not.
const [n, slots, inlineBelow] = [3, 2, 16 * 1024];
const REPEATS = 3;

interface Received {
  readonly bytes: number;
  readonly slot: boolean;
  released: boolean;
}

/** Passes every call through to a real endpoint and records each frame it hands out and whether it was released. */
function spyOn(inner: Transport, log: Received[]): Transport {
  return {
    rank: inner.rank,
    worldSize: inner.worldSize,
    kind: inner.kind,
    send: (...args) => inner.send(...args),
    stats: () => inner.stats(),
    close: () => inner.close(),
    async recv(from: number, tag: string, options?: RecvOptions): Promise<Frame> {
      const frame = await inner.recv(from, tag, options);
      const entry: Received = { bytes: frame.payload.byteLength, slot: typeof frame.release === 'function', released: false };
      log.push(entry);
      if (!frame.release) return frame;
      const release = frame.release.bind(frame);
      return { ...frame, release: () => ((entry.released = true), release()) };
    },
  };
}

let kernel: BlockAttentionKernel;
let rendezvous: RendezvousServer;
let endpoints: Transport[] = [];
const log: Received[] = [];
let spied: Transport[] = [];

beforeAll(async () => {
  kernel = await createAttentionKernel({ threads: 1 });
  const token = `frame-release-${Math.random()}`;
  rendezvous = await startRendezvous({ worldSize: n, token });
  endpoints = await Promise.all(
    Array.from({ length: n }, (_, rank) => createTransport('shm', { rank, worldSize: n, token, rendezvous: rendezvous.address, slots, inlineBelow, slotWaitMs: 1000 })),
  );
  spied = endpoints.map((endpoint) => spyOn(endpoint, log));
});
afterAll(async () => {
  await Promise.all(endpoints.map((endpoint) => endpoint.close()));
  await rendezvous?.close();
  await kernel?.close();
});

/** Every frame large enough for a slot came through one, and every one of them was released. */
function expectAllThroughSlotsAndReleased(): void {
  const large = log.filter((frame) => frame.bytes >= inlineBelow);
  expect(large.length).toBeGreaterThan(0);
  expect(
    large.filter((frame) => !frame.slot),
    'frames that fell back to the socket',
  ).toEqual([]);
  expect(
    log.filter((frame) => frame.slot && !frame.released),
    'slot frames never released',
  ).toEqual([]);
}

describe('received shm frames are released by every strategy', () => {
  // S = 1031 with 6 query heads of dim 8: frames of ~66 KB (KV blocks, queries, Ulysses head slices, partials).
  const [seq, hq, hkv, d] = [1031, 6, 3, 8];
  const random = seededRandom(5);
  const q = randomTensor([seq, hq, d], random);
  const k = randomTensor([seq, hkv, d], random);
  const v = randomTensor([seq, hkv, d], random);

  it.each<StrategyName>(['ulysses', 'ring', 'striped', 'zigzag', 'token-ring'])('%s: repeated requests, exact, no socket fallback', async (name) => {
    log.length = 0;
    for (const causal of [true, false]) {
      const expected = await kernel.attend(q, k, v, { kind: causal ? 'causal-inclusive' : 'none' });
      for (let request = 0; request < REPEATS; request++) {
        const { result } = await runStrategyInproc(name, q, k, v, { causal, degree: n, kernels: [kernel], timeoutMs: 20_000, transports: spied });
        expect(result.out.data).toEqual(run0(name, causal, result).out.data);
        expect(Math.max(...result.out.data.map((x, i) => Math.abs(x - expected.out.data[i]!)))).toBeLessThanOrEqual(1e-4);
      }
    }
    expectAllThroughSlotsAndReleased();
  });

  it('decode: many partial gathers, every rank bit-identical, no socket fallback', async () => {
    log.length = 0;
    // 8 new tokens x 8 heads x dim 64: a 16.6 KB partial, large enough for a slot.
    const [rows, heads, dim] = [8, 8, 64];
    for (let round = 0; round < 4 * REPEATS; round++) {
      const locals: PartialAttention[] = Array.from({ length: n }, () => ({ out: randomTensor([rows, heads, dim], random), lse: randomTensor([heads, rows], random) }));
      const merged = await Promise.all(
        spied.map((transport, rank) =>
          gatherDecodePartials({ rank, worldSize: n, transport, kernel, recorder: new RankRecorder(rank), tagPrefix: `g${round}/`, timeoutMs: 10_000 }, locals[rank]!),
        ),
      );
      for (const other of merged.slice(1)) {
        expect(other.out.data).toEqual(merged[0]!.out.data);
        expect(other.lse.data).toEqual(merged[0]!.lse.data);
      }
    }
    expectAllThroughSlotsAndReleased();
  });
});

/** The first result of each (strategy, causal): later requests must repeat it bit for bit. */
const firstResults = new Map<string, PartialAttention>();
function run0(name: StrategyName, causal: boolean, result: PartialAttention): PartialAttention {
  const key = `${name}/${causal}`;
  if (!firstResults.has(key)) firstResults.set(key, result);
  return firstResults.get(key)!;
}
