import { readdirSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPartial, gatherPartialRows, mergeInto, RankRecorder, type BlockAttentionKernel, type PartialAttention } from '@seqpar/core';
import { ComputeThread, GraphBuilder, LOCAL_ROW, type ChainStep } from '@seqpar/kernels';
import { createTransport, startRendezvous, type RendezvousServer, type Transport } from '@seqpar/transport';
import { laneExchanges, type LaneExchanges } from '../src/index.js';
import { randomPartial } from './harness.js';

const [HEADS, DIM] = [8, 32];
const LAYERS = 16;
/** Three ranks: an owner merges two peers' partials besides its own, in rank order. */
const WORLD = 3;
const RANKS = Array.from({ length: WORLD }, (_, rank) => rank);
/**
 * Each rank's decode batch: the sharded rows (owners 0, 2, 1) come in the same order on every rank, between rows of
 * sessions that rank holds alone, which differ from rank to rank.
 */
const OWNERS = [
  [0, LOCAL_ROW, 2, 1],
  [0, 2, LOCAL_ROW, LOCAL_ROW, 1],
  [LOCAL_ROW, 0, 2, 1],
];
const localRowsOf = (rank: number) => OWNERS[rank]!.flatMap((owner, i) => (owner === rank || owner === LOCAL_ROW ? [i] : []));

/** Stands in for the pre-attention and attention graphs: q [local rows, Hq, D], out [B, Hq, D] and lse [Hq, B] passed through. */
function passThrough(): Uint8Array {
  const g = new GraphBuilder('decode-outputs');
  g.op('Identity', [g.input('qin', 'float', ['n', HEADS, DIM])], {}, { outputName: 'q' });
  g.op('Identity', [g.input('o', 'float', ['b', HEADS, DIM])], {}, { outputName: 'out' });
  g.op('Identity', [g.input('l', 'float', [HEADS, 'b'])], {}, { outputName: 'lse' });
  g.output('q', 'float', ['n', HEADS, DIM]);
  g.output('out', 'float', ['b', HEADS, DIM]);
  g.output('lse', 'float', [HEADS, 'b']);
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
  await Promise.all(threads.map((thread) => thread.load('decode', passThrough)));
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

/** One rank's layer: its local rows' queries and its partial of every row of its batch. */
interface RankLayer {
  readonly q: Float32Array;
  readonly partial: PartialAttention;
}

function rankLayer(rank: number, seed: number): RankLayer {
  const partial = randomPartial(OWNERS[rank]!.length, HEADS, DIM, seed);
  const q = randomPartial(localRowsOf(rank).length, HEADS, DIM, seed + 1000).out.data;
  return { q, partial };
}

function decodeStep(rank: number, { q, partial }: RankLayer): ChainStep {
  const [local, rows] = [localRowsOf(rank).length, OWNERS[rank]!.length];
  return {
    run: 'decode',
    feeds: {
      qin: { type: 'float32', data: q, dims: [local, HEADS, DIM] },
      o: { type: 'float32', data: partial.out.data, dims: [rows, HEADS, DIM] },
      l: { type: 'float32', data: partial.lse.data, dims: [HEADS, rows] },
    },
  };
}

const batchOf = (rank: number) => ({ owners: OWNERS[rank]!, heads: HEADS, dim: DIM });

/** A layer's chain on `rank`: its graphs, then both exchanges. */
function layerChain(rank: number, layer: RankLayer, lanes: LaneExchanges, tag: string): Promise<Record<string, Float32Array>> {
  return threads[rank]!.chain([decodeStep(rank, layer), lanes.queries(tag, batchOf(rank)), lanes.partials(tag, batchOf(rank))]);
}

/** An exchange on `ctx`'s rank that its peers never join. */
async function exchangeAlone(ctx: ReturnType<typeof contextOf> & { signal?: AbortSignal }): Promise<unknown> {
  using lanes = laneExchanges(ctx)!;
  return await layerChain(ctx.rank, rankLayer(ctx.rank, 3), lanes, 'd0/0/');
}

const ROW = HEADS * DIM;
const rowOf = (data: Float32Array, i: number) => data.subarray(i * ROW, (i + 1) * ROW);

/** Sharded row k (k-th in the order all ranks share) of `rank`'s batch, and the inverse. */
const shardedRow = (rank: number, k: number) => OWNERS[rank]!.flatMap((owner, i) => (owner === LOCAL_ROW ? [] : [i]))[k]!;
const shardedIndex = (rank: number, i: number) => OWNERS[rank]!.slice(0, i).filter((owner) => owner !== LOCAL_ROW).length;

describe('pass-Q decode exchanges on the compute thread, through decode lanes (shm)', () => {
  it('gives every rank the queries of all rows and each owner its rows’ partials merged in rank order, with no frame and no socket message', async () => {
    const before = ends.map((end) => end.stats());
    // One chain per rank per layer, so each layer's outputs can be checked; a decode step chains all layers at once.
    for (let layer = 0; layer < LAYERS; layer++) {
      const layers = RANKS.map((rank) => rankLayer(rank, WORLD * layer + rank));
      const outputs = await Promise.all(
        RANKS.map((rank) => {
          using lanes = laneExchanges(contextOf(rank))!;
          return layerChain(rank, layers[rank]!, lanes, `d0/${layer}/`);
        }),
      );
      for (const [rank, { q, attn }] of outputs.entries()) {
        const local = localRowsOf(rank);
        // Queries: a row this rank runs is its own; a sharded row another rank owns comes from that owner.
        OWNERS[rank]!.forEach((owner, i) => {
          const [source, row] = owner === LOCAL_ROW || owner === rank ? [rank, i] : [owner, shardedRow(owner, shardedIndex(rank, i))];
          expect(rowOf(q!, i)).toEqual(rowOf(layers[source]!.q, localRowsOf(source).indexOf(row)));
        });
        // Partials: a row held alone keeps this rank's out; an owned row is every rank's partial of it, merged in rank order.
        local.forEach((i, j) => {
          if (OWNERS[rank]![i] === LOCAL_ROW) return expect(rowOf(attn!, j)).toEqual(rowOf(layers[rank]!.partial.out.data, i));
          const k = shardedIndex(rank, i);
          const merged = createPartial(1, HEADS, DIM);
          for (const r of RANKS) {
            const { out, lse } = layers[r]!.partial;
            const row = createPartial(1, HEADS, DIM);
            gatherPartialRows(out.data, lse.data, [shardedRow(r, k)], row);
            mergeInto(merged, row);
          }
          expect(rowOf(attn!, j)).toEqual(merged.out.data);
        });
      }
    }
    expect(ends.map((end) => end.stats())).toEqual(before);
    expect(shmEntries()).toEqual([]); // every lane file and bell was unlinked once opened
  });

  it('fails the waiting exchange with ERR_PEER_LOST when the peer goes, at once', async () => {
    const waiting = exchangeAlone(contextOf(0));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    await ends[1]!.close();
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_PEER_LOST' });
    expect(performance.now() - started).toBeLessThan(2000);

    // A failed lane stays failed: the next exchange fails at once, with the same code.
    using lanes = laneExchanges(contextOf(0))!;
    await expect(layerChain(0, rankLayer(0, 2), lanes, 'd0/1/')).rejects.toMatchObject({ code: 'ERR_PEER_LOST' });
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

  it('refuses a message of a different exchange under the same number (ranks out of step)', async () => {
    const outcomes = await Promise.allSettled(
      [0, 1].map((rank) => {
        using lanes = laneExchanges(contextOf(rank))!;
        return layerChain(rank, rankLayer(rank, rank), lanes, `d0/${rank}/`);
      }),
    );
    expect(outcomes.map((outcome) => (outcome.status === 'rejected' ? (outcome.reason as { code: string }).code : 'merged'))).toEqual(['ERR_INTERNAL', 'ERR_INTERNAL']);
  });
});
