import { readdirSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPartial, mergeInto, RankRecorder, type BlockAttentionKernel, type PartialAttention } from '@seqpar/core';
import { ComputeThread, GraphBuilder, type ChainStep } from '@seqpar/kernels';
import { createTransport, startRendezvous, type RendezvousServer, type Transport } from '@seqpar/transport';
import { laneExchanges } from '../src/index.js';
import { randomPartial } from './harness.js';

/** A batched decode step's attention outputs: 3 rows, of which rows 0 and 2 are sharded; 8 heads of 32 dims. */
const [ROWS, HEADS, DIM] = [3, 8, 32];
const SHARDED = [0, 2];
const LAYERS = 16;
/** Three ranks: each merges two peers' partials besides its own, in rank order. */
const WORLD = 3;
const RANKS = Array.from({ length: WORLD }, (_, rank) => rank);

/** Stands in for the attention graph: out [B, Hq, D] and lse [Hq, B] are its inputs, passed through. */
function passThrough(): Uint8Array {
  const g = new GraphBuilder('attention-outputs');
  g.op('Identity', [g.input('o', 'float', [ROWS, HEADS, DIM])], {}, { outputName: 'out' });
  g.op('Identity', [g.input('l', 'float', [HEADS, ROWS])], {}, { outputName: 'lse' });
  g.output('out', 'float', [ROWS, HEADS, DIM]);
  g.output('lse', 'float', [HEADS, ROWS]);
  return g.toModelBytes();
}

const shmEntries = () => readdirSync('/dev/shm').filter((name) => name.startsWith(`seqpar-${process.pid}-`));

let rendezvous: RendezvousServer;
let ends: Transport[];
let threads: ComputeThread[];
beforeEach(async () => {
  const token = 'decode-lanes';
  rendezvous = await startRendezvous({ worldSize: WORLD, token });
  const options = { worldSize: WORLD, token, rendezvous: rendezvous.address };
  ends = await Promise.all(RANKS.map((rank) => createTransport('shm', { ...options, rank })));
  threads = await Promise.all(RANKS.map(() => ComputeThread.start({ threads: 1 })));
  await Promise.all(threads.map((thread) => thread.load('attention', passThrough)));
});
afterEach(async () => {
  await Promise.all(threads?.map((thread) => thread.close()) ?? []);
  await Promise.all(ends?.map((end) => end.close()) ?? []);
  await rendezvous?.close();
});

const contextOf = (rank: number, timeoutMs = 10_000) => ({
  rank,
  worldSize: WORLD,
  transport: ends[rank]!,
  kernel: undefined as unknown as BlockAttentionKernel,
  recorder: new RankRecorder(rank),
  tagPrefix: 'r0/',
  timeoutMs,
});

const randomPartialOf = (seed: number): PartialAttention => randomPartial(ROWS, HEADS, DIM, seed);

function attentionStep(partial: PartialAttention): ChainStep {
  return {
    run: 'attention',
    feeds: { o: { type: 'float32', data: partial.out.data, dims: [ROWS, HEADS, DIM] }, l: { type: 'float32', data: partial.lse.data, dims: [HEADS, ROWS] } },
  };
}

/** An exchange on `ctx`'s rank that its peer never joins. */
async function exchangeAlone(ctx: ReturnType<typeof contextOf> & { signal?: AbortSignal }): Promise<unknown> {
  using lanes = laneExchanges(ctx)!;
  return await threads[ctx.rank]!.chain([attentionStep(randomPartialOf(3)), lanes.step('d0/0/', SHARDED)]);
}

describe('decode exchange on the compute thread, through decode lanes (shm)', () => {
  it('merges every layer’s sharded rows in rank order on every rank, same bits, with no frame and no socket message', async () => {
    const before = ends.map((end) => end.stats());
    const locals = Array.from({ length: LAYERS }, (_, layer) => RANKS.map((rank) => randomPartialOf(WORLD * layer + rank)));
    // One chain per rank per layer, so each layer's outputs can be checked; a decode step chains all layers at once.
    for (let layer = 0; layer < LAYERS; layer++) {
      const outputs = await Promise.all(
        RANKS.map((rank) => {
          using lanes = laneExchanges(contextOf(rank))!;
          return threads[rank]!.chain([attentionStep(locals[layer]![rank]!), lanes.step(`d0/${layer}/`, SHARDED)]);
        }),
      );
      const expected = createPartial(SHARDED.length, HEADS, DIM);
      for (const local of locals[layer]!) mergeInto(expected, sliceRows(local, SHARDED));
      for (const [rank, { out, lse }] of outputs.entries()) {
        const merged = sliceRows({ out: { data: out!, shape: [ROWS, HEADS, DIM] }, lse: { data: lse!, shape: [HEADS, ROWS] } }, SHARDED);
        expect(merged.out.data).toEqual(expected.out.data);
        expect(merged.lse.data).toEqual(expected.lse.data);
        // The row that is not sharded keeps this rank's own partial.
        expect(out!.subarray(HEADS * DIM, 2 * HEADS * DIM)).toEqual(locals[layer]![rank]!.out.data.subarray(HEADS * DIM, 2 * HEADS * DIM));
      }
    }
    expect(ends.map((end) => end.stats())).toEqual(before);
    expect(shmEntries()).toEqual([]); // every lane file and bell was unlinked once opened
  });

  it('fails the waiting exchange with ERR_PEER_LOST when the peer goes, at once', async () => {
    const waiting = (async () => {
      using lanes = laneExchanges(contextOf(0))!;
      return await threads[0]!.chain([attentionStep(randomPartialOf(1)), lanes.step('d0/0/', SHARDED)]);
    })();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    await ends[1]!.close();
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_PEER_LOST' });
    expect(performance.now() - started).toBeLessThan(2000);

    // A failed lane stays failed: the next exchange fails at once, with the same code.
    using lanes = laneExchanges(contextOf(0))!;
    await expect(threads[0]!.chain([attentionStep(randomPartialOf(2)), lanes.step('d0/1/', SHARDED)])).rejects.toMatchObject({ code: 'ERR_PEER_LOST' });
  });

  it('fails a waiting exchange with ERR_TIMEOUT at the request timeout', async () => {
    const started = performance.now();
    await expect(exchangeAlone(contextOf(0, 300))).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('fails a waiting exchange with ERR_ABORTED on its signal', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(exchangeAlone({ ...contextOf(1), signal: controller.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  it('refuses to merge a partial of a different exchange under the same number (ranks out of step)', async () => {
    const outcomes = await Promise.allSettled(
      [0, 1].map((rank) => {
        using lanes = laneExchanges(contextOf(rank))!;
        return threads[rank]!.chain([attentionStep(randomPartialOf(rank)), lanes.step(`d0/${rank}/`, SHARDED)]);
      }),
    );
    expect(outcomes.map((outcome) => (outcome.status === 'rejected' ? (outcome.reason as { code: string }).code : 'merged'))).toEqual(['ERR_INTERNAL', 'ERR_INTERNAL']);
  });
});

/** Rows `rows` of a batch partial, as one partial of those rows. */
function sliceRows(partial: PartialAttention, rows: readonly number[]): PartialAttention {
  const n = rows.length;
  const result = createPartial(n, HEADS, DIM);
  rows.forEach((i, j) => {
    result.out.data.set(partial.out.data.subarray(i * HEADS * DIM, (i + 1) * HEADS * DIM), j * HEADS * DIM);
    for (let h = 0; h < HEADS; h++) result.lse.data[h * n + j] = partial.lse.data[h * ROWS + i]!;
  });
  return result;
}
