import { availableParallelism, hostname, totalmem } from 'node:os';
import { createPartial, mergeInto, type Tensor } from '@seqpar/core';
import { createAttentionKernel, type AttentionKernel } from '@seqpar/kernels';
import { createCluster } from '@seqpar/runtime';
import type { TransportKind } from '@seqpar/transport';
import { measureLink, measureMemcpy } from './calibrate-host.js';
import { DECLARED_PROFILES, describeSchedule, estimateCost, mergeBytes, type HardwareProfile, type KernelTable } from '@seqpar/planner';

export interface CalibrationOptions {
  /** The transport the runtime will use between workers (createCluster's default on one host is inproc). */
  readonly transport?: TransportKind;
  /** ORT intra-op threads per worker, as `--threads`. */
  readonly threads?: number;
  /**
   * Query heads the kernel calls are timed with (D 64; default 8): the cost model scales a call's time past its
   * round trip by heads, so time it at the heads the requests will have (a 2-head call is not a quarter of an
   * 8-head one where the round trip and copies weigh).
   */
  readonly heads?: number;
  /** Query rows and key rows of the unmasked calls timed, rising; causal diagonals at the query rows. */
  readonly queryRows?: readonly number[];
  readonly keyRows?: readonly number[];
  /** Progress lines (stderr in the CLI). */
  readonly log?: (line: string) => void;
}

const HEADS = 8;
const HEAD_DIM = 64;
/**
 * The shapes strategies call the kernel at: up to 512 query rows against up to a shard's keys (their unmasked pieces
 * of up to 2048 rows are priced from the 512-row ones, scaled by rows: kernel-table.ts).
 */
const QUERY_ROWS = [64, 128, 256, 512];
const KEY_ROWS = [64, 256, 1024, 4096, 16384];
/** The request the runtime's own costs are measured on: large enough to time, small enough to be quick. */
const REQUEST_SEQ = 2048;
const TINY_SEQ = 64;

/**
 * Measures this host as the planner sees it and returns a profile (save it with writeProfileFile):
 *  - the attention kernel call by call at the shapes strategies cut blocks into (kernelTable: unmasked 64..512
 *    query rows x 64..16384 keys, causal diagonals of 64..512), alone and with two kernels at once when the host
 *    has two compute units (ranks of one request compute together), and on a tiny block (the round trip); then the
 *    same calls traced inside a two-worker request (inRequestFactor);
 *  - merging a call's partial result into an accumulator (mergeMsPerMiB);
 *  - the runtime itself on real workers: a traced one-worker request's time beyond its kernel calls and merges
 *    gives the cost per MiB of moving the request's tensors (requestMsPerMiB), and a tiny two-worker ring request
 *    against a tiny one-worker one gives the fixed price of sharding (shardingOverheadMs);
 *  - a 64 MiB memcpy (memory bandwidth), and one direction of the transport with 8 MiB frames (bandwidth) and a
 *    1-byte echo (latency).
 */
export async function calibrateLocalProfile(options: CalibrationOptions = {}): Promise<HardwareProfile> {
  const log = options.log ?? (() => {});
  const transport = options.transport ?? 'inproc';
  const threads = options.threads ?? 1;
  const computeUnits = availableParallelism();
  const kernels = await Promise.all([0, 1].map(() => createAttentionKernel({ threads })));
  let kernelTable: KernelTable;
  try {
    const pair = kernels as [AttentionKernel, AttentionKernel];
    const together = computeUnits >= 2 * threads;
    const isolated = await measureKernelTable(pair, together, options, log);
    kernelTable = { ...isolated, inRequestFactor: together ? await measureInRequestFactor(pair, isolated.heads, transport, threads, log) : 1 };
  } finally {
    await Promise.all(kernels.map((kernel) => kernel.close()));
  }
  const mergeMsPerMiB = measureMerge();
  log(`merge ${mergeMsPerMiB.toFixed(2)} ms/MiB`);
  const { memoryBandwidth, freshCopyMsPerMiB } = measureMemcpy();
  log(`memcpy ${(memoryBandwidth / 1e9).toFixed(1)} GB/s; into fresh buffers ${freshCopyMsPerMiB.toFixed(2)} ms/MiB`);
  const link = await measureLink(transport);
  log(`${transport} link ${(link.bandwidth / 1e9).toFixed(2)} GB/s one way, latency ${(link.latencyMs * 1000).toFixed(0)} us`);
  const local = DECLARED_PROFILES['local']!;
  const [rows, keys] = [kernelTable.queryRows.at(-1)!, kernelTable.keyRows.at(-1)!];
  const causalRows = kernelTable.causalRows.at(-1)!;
  const measured: HardwareProfile = {
    name: `calibrated-${hostname()}`,
    source: `calibrated on ${hostname()} at ${new Date().toISOString()} (kernel calls ${kernelTable.queryRows[0]}..${rows} x ${kernelTable.keyRows[0]}..${keys} rows, H ${kernelTable.heads}, D ${HEAD_DIM}, ${threads} thread(s); ${transport} transport)`,
    // The largest calls' FLOP/s, for what reads a flat figure (the simulator's ideal time).
    attentionFlops: (4 * rows * keys * kernelTable.heads * HEAD_DIM) / (kernelTable.aloneMs.at(-1)!.at(-1)! / 1000),
    causalAttentionFlops: (2 * causalRows * (causalRows + 1) * kernelTable.heads * HEAD_DIM) / (kernelTable.causalAloneMs.at(-1)! / 1000),
    kernelTable,
    kernelLaunchMs: kernelTable.launchMs,
    stepOverheadMs: local.stepOverheadMs,
    memoryBandwidth,
    freshCopyMsPerMiB,
    mergeMsPerMiB,
    linkBandwidth: link.bandwidth,
    linkLatencyMs: link.latencyMs,
    // Workers share the host's RAM: give each an equal share, at most the declared local figure.
    deviceMemoryBytes: Math.min(local.deviceMemoryBytes, Math.floor(totalmem() / computeUnits)),
    bytesPerElement: 4,
    computeUnits,
    // In-process ranks run their host-side work on this one JavaScript thread.
    ...(transport === 'inproc' ? { hostThreads: 1 } : {}),
  };
  return { ...measured, ...(await measureRuntime(transport, threads, measured, log)) };
}

/**
 * How much slower kernel calls run inside a request on two workers than two at once in isolation: a traced ring
 * request's kernel calls (each rank's calls of 512 x 1024) against the same calls run two at once on `kernels`,
 * the two alternating so that a shift in the shared host's load hits both, the least disturbed of several rounds.
 * Traced at 2048 tokens: 16-23 ms per call in the request against 16 ms two at once alone, the slowest while the
 * coordinator hands out shards and gathers results.
 */
async function measureInRequestFactor(
  [a, b]: [AttentionKernel, AttentionKernel],
  heads: number,
  transport: TransportKind,
  threads: number,
  log: (line: string) => void,
): Promise<number> {
  const [q, k, v] = [0, 1, 2].map(() => randomTensor(REQUEST_SEQ, heads)) as [Tensor, Tensor, Tensor];
  const w = { seq: REQUEST_SEQ, prefix: 0, causal: false, heads, kvHeads: heads, headDim: HEAD_DIM, bytesPerElement: 4 };
  // The request's calls by shape, over both ranks (each shape's pair of calls covers one call of each rank).
  const groups = describeSchedule('ring', w, 2).ranks[0]!.flatMap((step) => step.pieces);
  const pairs = groups.map((p) => {
    const [pq, pk, pv] = [randomTensor(p.queryRows, heads), randomTensor(p.keyRows, heads), randomTensor(p.keyRows, heads)];
    return () => Promise.all([a, b].map((kernel) => kernel.attend(pq, pk, pv, { kind: p.masked ? 'causal-inclusive' : 'none' })));
  });
  const cluster = await createCluster({ workers: 2, transport, threads });
  let [tracedMs, isolatedMs] = [Infinity, Infinity];
  try {
    for (let i = 0; i < 14; i++) {
      const { stats } = await cluster.attention(q, k, v, { strategy: 'ring', trace: true });
      // The strategies time each kernel call as a compute span named `attend <mask> <block>` (merges apart).
      const calls = (stats.spans ?? []).flat().filter((span) => span.track === 'compute' && span.name.startsWith('attend'));
      let pairMs = 0;
      for (const [g, pair] of pairs.entries()) pairMs += groups[g]!.count * 2 * (await elapsedMs(pair));
      if (i < 2 || calls.length === 0) continue;
      tracedMs = Math.min(
        tracedMs,
        calls.reduce((sum, span) => sum + span.durationMs, 0),
      );
      isolatedMs = Math.min(isolatedMs, pairMs);
    }
  } finally {
    await cluster.close();
  }
  if (!Number.isFinite(tracedMs)) {
    log('ring request traced no kernel calls: in-request factor 1');
    return 1;
  }
  const factor = tracedMs / isolatedMs;
  log(`ring ${REQUEST_SEQ} on 2 workers: kernel calls ${tracedMs.toFixed(1)} ms traced vs ${isolatedMs.toFixed(1)} ms two at once alone (x${factor.toFixed(2)})`);
  return factor;
}

/**
 * Each call shape after two warm-ups (the first builds the shape's graph; ORT's tiled causal graph needs a second
 * run before its allocations settle, measured 107 vs 74 ms at 2048 rows): the fastest of several rounds alone and,
 * when `together`, on both kernels at once (the host is shared: the fastest run is the least disturbed).
 */
async function measureKernelTable(
  [a, b]: [AttentionKernel, AttentionKernel],
  together: boolean,
  options: CalibrationOptions,
  log: (line: string) => void,
): Promise<Omit<KernelTable, 'inRequestFactor'>> {
  const queryRows = options.queryRows ?? QUERY_ROWS;
  const keyRows = options.keyRows ?? KEY_ROWS;
  const heads = options.heads ?? HEADS;
  const time = async (rows: number, keys: number, kind: 'none' | 'causal-inclusive', warm: boolean): Promise<[number, number]> => {
    const q = randomTensor(rows, heads);
    const [k, v] = [randomTensor(keys, heads), randomTensor(keys, heads)];
    const one = (kernel: AttentionKernel) => kernel.attend(q, k, v, { kind });
    const alone = () => one(a);
    const shared = () => (together ? Promise.all([one(a), one(b)]) : one(a));
    if (!warm) for (const call of [alone, alone, shared, shared]) await call();
    // Alone and shared alternate, so a shift in the host's load hits both; quick calls get more rounds.
    const rounds = rows * keys <= 512 * 1024 ? 7 : 3;
    let [aloneMs, sharedMs] = [Infinity, Infinity];
    for (let i = 0; i < rounds; i++) {
      aloneMs = Math.min(aloneMs, await elapsedMs(alone));
      sharedMs = Math.min(sharedMs, await elapsedMs(shared));
    }
    return [aloneMs, sharedMs];
  };
  // Two passes over every shape, keeping each shape's fastest: a burst of load on the shared host lasting seconds
  // spoils a few shapes of one pass (measured: 256-row calls twice as slow for 4 s), rarely the same in both.
  const shapes: [number, number, 'none' | 'causal-inclusive'][] = [
    ...queryRows.flatMap((rows) => keyRows.map((keys): [number, number, 'none'] => [rows, keys, 'none'])),
    ...queryRows.map((rows): [number, number, 'causal-inclusive'] => [rows, rows, 'causal-inclusive']),
  ];
  const best = shapes.map((): [number, number] => [Infinity, Infinity]);
  log(`kernel calls at ${shapes.length} shapes, two passes (each shape's line comes with the second)`);
  for (let pass = 0; pass < 2; pass++) {
    for (const [i, [rows, keys, kind]] of shapes.entries()) {
      const [aloneMs, sharedMs] = await time(rows, keys, kind, pass > 0);
      best[i] = [Math.min(best[i]![0], aloneMs), Math.min(best[i]![1], sharedMs)];
      if (pass === 1) log(`kernel ${kind} ${rows}x${keys}: alone ${best[i]![0].toFixed(2)} ms, two at once ${best[i]![1].toFixed(2)} ms`);
    }
  }
  const unmasked = best.slice(0, queryRows.length * keyRows.length);
  const causal = best.slice(unmasked.length);
  const grid = (which: 0 | 1): number[][] => queryRows.map((_, i) => keyRows.map((_, j) => unmasked[i * keyRows.length + j]![which]));
  const tiny = randomTensor(16, heads);
  const launchMs = await bestMs(20, () => a.attend(tiny, tiny, tiny, { kind: 'none' }));
  log(`kernel 16x16: ${launchMs.toFixed(3)} ms`);
  const headsExponent = heads >= 2 ? await measureHeadsExponent(a, heads, launchMs, log) : undefined;
  return {
    heads,
    ...(headsExponent === undefined ? {} : { headsExponent }),
    headDim: HEAD_DIM,
    launchMs,
    queryRows,
    keyRows,
    aloneMs: grid(0),
    sharedMs: grid(1),
    causalRows: queryRows,
    causalAloneMs: causal.map((t) => t[0]),
    causalSharedMs: causal.map((t) => t[1]),
  };
}

/**
 * How a call's time past its round trip grows with its heads: a 512 x 16384 call (the strategies' largest common
 * shape) at `heads` and at half of them, alternating, the fastest of several rounds each; the exponent p with
 * full = half x 2^p. Left out (proportional) when the measurement makes no sense on a disturbed host.
 */
async function measureHeadsExponent(kernel: AttentionKernel, heads: number, launchMs: number, log: (line: string) => void): Promise<number | undefined> {
  const call = (h: number) => {
    const [q, k, v] = [randomTensor(512, h), randomTensor(16384, h), randomTensor(16384, h)];
    return () => kernel.attend(q, k, v, { kind: 'none' });
  };
  const [full, half] = [call(heads), call(Math.floor(heads / 2))];
  for (const warm of [full, full, half, half]) await warm();
  let [fullMs, halfMs] = [Infinity, Infinity];
  for (let i = 0; i < 4; i++) {
    fullMs = Math.min(fullMs, await elapsedMs(full));
    halfMs = Math.min(halfMs, await elapsedMs(half));
  }
  const exponent = Math.log((fullMs - launchMs) / (halfMs - launchMs)) / Math.log(heads / Math.floor(heads / 2));
  log(`kernel 512x16384: ${heads} heads ${fullMs.toFixed(1)} ms, ${Math.floor(heads / 2)} ${halfMs.toFixed(1)} ms: time past the round trip grows as heads^${exponent.toFixed(2)}`);
  return Number.isFinite(exponent) && exponent > 0 ? exponent : undefined;
}

/** Merging a 512-row partial into an accumulator as strategies do after every call, per MiB it reads and writes. */
function measureMerge(): number {
  const rows = 512;
  const acc = createPartial(rows, HEADS, HEAD_DIM);
  const block = { out: randomTensor(rows, HEADS), lse: { data: new Float32Array(HEADS * rows).fill(1), shape: [HEADS, rows] } };
  let best = Infinity;
  for (let i = 0; i < 12; i++) {
    const start = performance.now();
    mergeInto(acc, block);
    if (i >= 2) best = Math.min(best, performance.now() - start);
  }
  return best / (mergeBytes(rows, { heads: HEADS, headDim: HEAD_DIM }) / 2 ** 20);
}

/**
 * The runtime's own costs on real workers (createCluster over `transport`): a traced one-worker request's wall time
 * beyond its rank's own compute (kernel calls and merges, timed in the same request), per MiB of the request's
 * tensors; and a tiny request on two workers (ring) minus the same on one, less what `measured` (the profile's
 * other figures) already prices in that difference (the second rank's calls, steps and merges), so the fixed
 * price of sharding is not counted twice (measured at 512 tokens, 2 heads: counted twice it made every sharded
 * plan 0.7 ms, 25%, slower than measured, and the planner kept requests on one rank that ran faster on two).
 */
async function measureRuntime(transport: TransportKind, threads: number, measured: HardwareProfile, log: (line: string) => void) {
  // The tiny request at the heads the kernel table was timed at, where the table prices its calls as measured.
  const tinyHeads = measured.kernelTable?.heads ?? HEADS;
  const request = (seq: number, heads: number) => [0, 1, 2].map(() => randomTensor(seq, heads)) as [Tensor, Tensor, Tensor];
  const [big, tiny] = [request(REQUEST_SEQ, HEADS), request(TINY_SEQ, tinyHeads)];
  // Untraced requests for the wall time (a traced one also aligns clocks first), traced ones for the rank's compute.
  const cluster = await createCluster({ workers: 1, transport, threads });
  let [wallMs, computeMs] = [Infinity, Infinity];
  try {
    for (let i = 0; i < 14; i++) {
      const [{ stats }, traced] = [await cluster.attention(...big), await cluster.attention(...big, { trace: true })];
      if (i < 2) continue;
      wallMs = Math.min(wallMs, stats.wallMs);
      computeMs = Math.min(
        computeMs,
        (traced.stats.spans ?? []).flat().reduce((sum, span) => sum + (span.track === 'compute' ? span.durationMs : 0), 0),
      );
    }
  } finally {
    await cluster.close();
  }
  const requestMs = Math.max(0, wallMs - computeMs);
  const mib = (4 * REQUEST_SEQ * HEADS * HEAD_DIM * 4 + 4 * REQUEST_SEQ * HEADS) / 2 ** 20;
  const requestMsPerMiB = requestMs / mib;
  const differenceMs = await measureShardingOverhead(transport, threads, tiny);
  const tinyWorkload = { seq: TINY_SEQ, prefix: 0, causal: false, heads: tinyHeads, kvHeads: tinyHeads, headDim: HEAD_DIM, bytesPerElement: 4 };
  const pricedMs = estimateCost(describeSchedule('ring', tinyWorkload, 2), measured).predictedMs - estimateCost(describeSchedule('single', tinyWorkload, 1), measured).predictedMs;
  const shardingOverheadMs = Math.max(0, differenceMs - pricedMs);
  log(
    `request ${REQUEST_SEQ} on 1 worker: ${requestMs.toFixed(1)} ms beyond its calls and merges, ${requestMsPerMiB.toFixed(2)} ms/MiB; tiny request on 2 workers ${differenceMs.toFixed(2)} ms over 1, ${pricedMs.toFixed(2)} of it priced: sharding ${shardingOverheadMs.toFixed(2)} ms`,
  );
  return { requestMsPerMiB, shardingOverheadMs };
}

/** A tiny request on two workers (ring) against the same on one, alternating, the least disturbed of each. */
async function measureShardingOverhead(transport: TransportKind, threads: number, [q, k, v]: [Tensor, Tensor, Tensor]): Promise<number> {
  const [one, two] = [await createCluster({ workers: 1, transport, threads }), await createCluster({ workers: 2, transport, threads })];
  let [oneMs, twoMs] = [Infinity, Infinity];
  try {
    for (let i = 0; i < 24; i++) {
      const single = (await one.attention(q, k, v, { strategy: 'single' })).stats.wallMs;
      const ring = (await two.attention(q, k, v, { strategy: 'ring' })).stats.wallMs;
      if (i < 4) continue;
      [oneMs, twoMs] = [Math.min(oneMs, single), Math.min(twoMs, ring)];
    }
  } finally {
    await Promise.all([one.close(), two.close()]);
  }
  return Math.max(0, twoMs - oneMs);
}

function randomTensor(rows: number, heads: number): Tensor {
  const data = new Float32Array(rows * heads * HEAD_DIM);
  for (let i = 0; i < data.length; i++) data[i] = Math.random() * 2 - 1;
  return { data, shape: [rows, heads, HEAD_DIM] };
}

/**
 * Fastest of `runs` calls after two untimed warm-ups (graph build, allocations settling): the host is shared, so the
 * fastest run is the one least disturbed.
 */
async function bestMs(runs: number, call: () => Promise<unknown>): Promise<number> {
  await call();
  await call();
  let best = Infinity;
  for (let i = 0; i < runs; i++) best = Math.min(best, await elapsedMs(call));
  return best;
}

async function elapsedMs(call: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await call();
  return performance.now() - start;
}
