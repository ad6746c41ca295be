import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPartial, mergeInto, RankRecorder, type BlockAttentionKernel, type PartialAttention } from '@seqpar/core';
import { createTransport, startRendezvous, type RendezvousServer, type Transport } from '@seqpar/transport';
import { gatherDecodePartials } from '../src/index.js';
import { randomPartial } from './harness.js';

/** The tiny generation model's decode step: one new token, 8 query heads of 32 dims. */
const [ROWS, HEADS, DIM] = [1, 8, 32];
const LAYERS = 64;

let rendezvous: RendezvousServer;
let ends: Transport[];
beforeAll(async () => {
  const token = 'decode-shm';
  rendezvous = await startRendezvous({ worldSize: 2, token });
  // A spin budget longer than the test: neither end ever sleeps, so the check below is exact, not a tolerance.
  const options = { worldSize: 2, token, rendezvous: rendezvous.address, spinUs: 60_000_000 };
  ends = await Promise.all([0, 1].map((rank) => createTransport('shm', { ...options, rank })));
});
afterAll(async () => {
  await Promise.all(ends?.map((end) => end.close()) ?? []);
  await rendezvous?.close();
});

const randomPartialOf = (seed: number): PartialAttention => randomPartial(ROWS, HEADS, DIM, seed);

describe('decode exchange over shm', () => {
  it('moves no socket message per layer while both ranks poll, and every rank merges the same bits', async () => {
    const before = ends.map((end) => end.stats().socketMessages);
    for (let layer = 0; layer < LAYERS; layer++) {
      const locals = [randomPartialOf(2 * layer), randomPartialOf(2 * layer + 1)];
      const merged = await Promise.all(
        ends.map((transport, rank) =>
          gatherDecodePartials(
            { rank, worldSize: 2, transport, kernel: undefined as unknown as BlockAttentionKernel, recorder: new RankRecorder(rank), tagPrefix: `d0/${layer}/`, timeoutMs: 10_000 },
            locals[rank]!,
          ),
        ),
      );
      const expected = createPartial(ROWS, HEADS, DIM);
      for (const local of locals) mergeInto(expected, local);
      for (const result of merged) {
        expect(result.out.data).toEqual(expected.out.data);
        expect(result.lse.data).toEqual(expected.lse.data);
      }
    }
    expect(ends.map((end) => end.stats().socketMessages)).toEqual(before);
    expect(ends.map((end) => end.stats().framesRecv)).toEqual([LAYERS, LAYERS]);
  });
});
