import { availableParallelism, hostname, totalmem } from 'node:os';
import type { Tensor } from '@seqpar/core';
import type { AttentionKernel } from '@seqpar/kernels';
import type { PeerCommand, Transport, TransportKind } from '@seqpar/transport';
import { DECLARED_PROFILES, type HardwareProfile, type KernelPoint } from './profiles.js';

export interface CalibrationOptions {
  /** The transport the runtime will use between workers (createCluster's default on one host is inproc). */
  readonly transport?: TransportKind;
  /** ORT intra-op threads per worker, as `--threads`. */
  readonly threads?: number;
  /** Block sides the kernel is timed at (H 8, D 64), rising. */
  readonly blockRows?: readonly number[];
  /** Progress lines (stderr in the CLI). */
  readonly log?: (line: string) => void;
}

const HEADS = 8;
const HEAD_DIM = 64;
const LINK_FRAME_BYTES = 8 * 2 ** 20;
const LINK_FRAMES = 16;
const CURVE_ROWS = [256, 512, 1024, 2048, 4096];
/** The request the runtime's own costs are measured on: large enough to time, small enough to be quick. */
const REQUEST_SEQ = 2048;
const TINY_SEQ = 64;

/**
 * Measures this host as the planner sees it and returns a profile (save it with writeProfileFile):
 *  - the attention kernel on unmasked and causal square blocks from 256 to 4096 rows (its speed by block size:
 *    kernelCurve), and on a tiny block (launch cost);
 *  - two kernels at once against one alone (concurrentKernelEfficiency), when the host has two compute units;
 *  - the runtime itself on real workers: a one-worker request against its kernel alone gives the cost per MiB of
 *    moving the request's tensors (requestMsPerMiB), and a tiny two-worker ring request against a tiny one-worker
 *    one gives the fixed price of sharding (shardingOverheadMs);
 *  - a 64 MiB memcpy (memory bandwidth), and one direction of the transport with 8 MiB frames (bandwidth) and a
 *    1-byte echo (latency).
 * Kernels, transports and the runtime load lazily so that importing the planner (and the simulator) never loads
 * ONNX Runtime.
 */
export async function calibrateLocalProfile(options: CalibrationOptions = {}): Promise<HardwareProfile> {
  const log = options.log ?? (() => {});
  const transport = options.transport ?? 'inproc';
  const threads = options.threads ?? 1;
  const computeUnits = availableParallelism();
  const { createAttentionKernel } = await import('@seqpar/kernels');
  const kernels = await Promise.all([0, 1].map(() => createAttentionKernel({ threads })));
  let kernelFigures: Awaited<ReturnType<typeof measureKernel>>;
  let concurrentKernelEfficiency = 1;
  try {
    kernelFigures = await measureKernel(kernels[0]!, options.blockRows ?? CURVE_ROWS, log);
    if (computeUnits >= 2 * threads) concurrentKernelEfficiency = await measureConcurrency(kernels as [AttentionKernel, AttentionKernel], log);
  } finally {
    await Promise.all(kernels.map((kernel) => kernel.close()));
  }
  const runtime = await measureRuntime(transport, threads, kernelFigures.requestKernelMs, log);
  const { memoryBandwidth, freshCopyMsPerMiB } = measureMemcpy();
  log(`memcpy ${(memoryBandwidth / 1e9).toFixed(1)} GB/s; into fresh buffers ${freshCopyMsPerMiB.toFixed(2)} ms/MiB`);
  const link = await measureLink(transport);
  log(`${transport} link ${(link.bandwidth / 1e9).toFixed(2)} GB/s one way, latency ${(link.latencyMs * 1000).toFixed(0)} us`);
  const local = DECLARED_PROFILES['local']!;
  const curve = kernelFigures.kernelCurve;
  const largest = curve[curve.length - 1]!;
  return {
    name: `calibrated-${hostname()}`,
    source: `calibrated on ${hostname()} at ${new Date().toISOString()} (kernel ${curve[0]!.rows}..${largest.rows} rows, H ${HEADS}, D ${HEAD_DIM}, ${threads} thread(s); ${transport} transport)`,
    attentionFlops: largest.flops,
    causalAttentionFlops: largest.causalFlops,
    kernelCurve: curve,
    kernelLaunchMs: kernelFigures.kernelLaunchMs,
    stepOverheadMs: local.stepOverheadMs,
    memoryBandwidth,
    freshCopyMsPerMiB,
    linkBandwidth: link.bandwidth,
    linkLatencyMs: link.latencyMs,
    // Workers share the host's RAM: give each an equal share, at most the declared local figure.
    deviceMemoryBytes: Math.min(local.deviceMemoryBytes, Math.floor(totalmem() / computeUnits)),
    bytesPerElement: 4,
    ...runtime,
    concurrentKernelEfficiency,
    computeUnits,
  };
}

/**
 * Best of 3 after two warm-ups (the first builds the block's graph; ORT's tiled causal graph needs a second run
 * before its allocations settle, measured 107 vs 74 ms at 2048 rows) for each block side and mask.
 */
async function measureKernel(kernel: AttentionKernel, sides: readonly number[], log: (line: string) => void) {
  const kernelCurve: KernelPoint[] = [];
  let requestKernelMs = NaN;
  for (const rows of sides) {
    const [q, k, v] = [0, 1, 2].map(() => randomTensor(rows, HEADS));
    const unmaskedMs = await bestMs(3, () => kernel.attend(q!, k!, v!, { kind: 'none' }));
    const causalMs = await bestMs(3, () => kernel.attend(q!, k!, v!, { kind: 'causal-inclusive' }));
    if (rows === REQUEST_SEQ) requestKernelMs = unmaskedMs;
    const fullFlops = 4 * rows * rows * HEADS * HEAD_DIM;
    // A causal block's visible pairs: S(S+1)/2 of S².
    const causalFlops = (fullFlops * (rows + 1)) / (2 * rows);
    kernelCurve.push({ rows, flops: (1000 * fullFlops) / unmaskedMs, causalFlops: (1000 * causalFlops) / causalMs });
    log(`kernel ${rows}x${rows}: unmasked ${unmaskedMs.toFixed(1)} ms, causal ${causalMs.toFixed(1)} ms`);
  }
  if (Number.isNaN(requestKernelMs)) {
    const [q, k, v] = [0, 1, 2].map(() => randomTensor(REQUEST_SEQ, HEADS));
    requestKernelMs = await bestMs(3, () => kernel.attend(q!, k!, v!, { kind: 'none' }));
  }
  const tiny = randomTensor(16, HEADS);
  const kernelLaunchMs = await bestMs(20, () => kernel.attend(tiny, tiny, tiny, { kind: 'none' }));
  log(`kernel 16x16: ${kernelLaunchMs.toFixed(3)} ms`);
  return { kernelCurve, kernelLaunchMs, requestKernelMs };
}

/** One 2048-row block alone, then on two kernels at once: how much a rank slows when its neighbour computes too. */
async function measureConcurrency([a, b]: [AttentionKernel, AttentionKernel], log: (line: string) => void): Promise<number> {
  const [q, k, v] = [0, 1, 2].map(() => randomTensor(REQUEST_SEQ, HEADS));
  const one = (kernel: AttentionKernel) => kernel.attend(q!, k!, v!, { kind: 'none' });
  const aloneMs = await bestMs(3, () => one(a));
  const togetherMs = await bestMs(3, () => Promise.all([one(a), one(b)]));
  const efficiency = Math.min(1, aloneMs / togetherMs);
  log(`kernel ${REQUEST_SEQ}x${REQUEST_SEQ}: alone ${aloneMs.toFixed(1)} ms, two at once ${togetherMs.toFixed(1)} ms (efficiency ${efficiency.toFixed(2)})`);
  return efficiency;
}

/**
 * The runtime's own costs on real workers (createCluster over `transport`): a one-worker request minus its
 * kernel alone, per MiB of the request's tensors; and a tiny request on two workers (ring) minus the same on one.
 */
async function measureRuntime(transport: TransportKind, threads: number, kernelMs: number, log: (line: string) => void) {
  const { createCluster } = await import('@seqpar/runtime');
  const request = (seq: number) => [0, 1, 2].map(() => randomTensor(seq, HEADS)) as [Tensor, Tensor, Tensor];
  const [big, tiny] = [request(REQUEST_SEQ), request(TINY_SEQ)];
  const time = async (workers: number, strategy: 'single' | 'ring', [q, k, v]: [Tensor, Tensor, Tensor], runs: number): Promise<number> => {
    const cluster = await createCluster({ workers, transport, threads });
    try {
      return await bestMs(runs, () => cluster.attention(q, k, v, { strategy }).then((r) => r.stats.wallMs), true);
    } finally {
      await cluster.close();
    }
  };
  const requestMs = await time(1, 'single', big, 3);
  const mib = (4 * REQUEST_SEQ * HEADS * HEAD_DIM * 4 + 4 * REQUEST_SEQ * HEADS) / 2 ** 20;
  const requestMsPerMiB = Math.max(0, requestMs - kernelMs) / mib;
  const shardingOverheadMs = Math.max(0, (await time(2, 'ring', tiny, 10)) - (await time(1, 'single', tiny, 10)));
  log(`request ${REQUEST_SEQ} on 1 worker ${requestMs.toFixed(1)} ms vs kernel ${kernelMs.toFixed(1)} ms: ${requestMsPerMiB.toFixed(2)} ms/MiB; sharding ${shardingOverheadMs.toFixed(2)} ms`);
  return { requestMsPerMiB, shardingOverheadMs };
}

function randomTensor(rows: number, heads: number): Tensor {
  const data = new Float32Array(rows * heads * HEAD_DIM);
  for (let i = 0; i < data.length; i++) data[i] = Math.random() * 2 - 1;
  return { data, shape: [rows, heads, HEAD_DIM] };
}

/**
 * Fastest of `runs` calls after two untimed warm-ups (graph build, allocations settling): the host is shared, so the
 * fastest run is the one least disturbed. `reported` takes the call's own measure (a request's wallMs) instead.
 */
async function bestMs(runs: number, call: () => Promise<unknown>, reported = false): Promise<number> {
  const once = async (): Promise<number> => {
    const start = performance.now();
    const value = await call();
    return reported ? (value as number) : performance.now() - start;
  };
  await once();
  await once();
  let best = Infinity;
  for (let i = 0; i < runs; i++) best = Math.min(best, await once());
  return best;
}

/**
 * A 64 MiB memcpy into a buffer already touched (memory bandwidth), and copies into fresh Float32Arrays as the
 * strategies make them when they pack frames (the new pages cost more than the copy: DESIGN §6, ~0.43 ms/MiB).
 */
function measureMemcpy(): { memoryBandwidth: number; freshCopyMsPerMiB: number } {
  const bytes = 64 * 2 ** 20;
  const [src, dst] = [Buffer.alloc(bytes, 1), Buffer.alloc(bytes)];
  src.copy(dst);
  let start = performance.now();
  for (let i = 0; i < 4; i++) src.copy(dst);
  const memoryBandwidth = (4 * bytes) / ((performance.now() - start) / 1000);
  const floats = new Float32Array(src.buffer, src.byteOffset, bytes / 4 / 4);
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    start = performance.now();
    new Float32Array(floats.length).set(floats);
    best = Math.min(best, performance.now() - start);
  }
  return { memoryBandwidth, freshCopyMsPerMiB: best / (floats.byteLength / 2 ** 20) };
}

/**
 * One direction of a rank-0 -> rank-1 link, one frame at a time as a ring step sends it: the time for rank 1 to
 * drain an 8 MiB frame less the time to drain a 1-byte one (the command round trip) gives the bandwidth; half a
 * 1-byte echo over the transport gives the latency.
 */
async function measureLink(kind: TransportKind): Promise<{ bandwidth: number; latencyMs: number }> {
  const pair = await openPair(kind);
  try {
    const big = new Uint8Array(LINK_FRAME_BYTES).fill(7);
    const drainMs = async (payload: Uint8Array): Promise<number> => {
      const start = performance.now();
      const drained = pair.run({ op: 'drain', tag: 'calibrate', count: 1 });
      await pair.local.send(1, 'calibrate', { seq: 0 }, payload);
      await drained;
      return performance.now() - start;
    };
    const echoMs = async (): Promise<number> => {
      const start = performance.now();
      const echoed = pair.run({ op: 'echo', tag: 'calibrate', count: 1 });
      await pair.local.send(1, 'calibrate', { seq: 0 }, tinyPayload);
      (await pair.local.recv(1, 'calibrate', { timeoutMs: 30_000 })).release?.();
      await echoed;
      return performance.now() - start;
    };
    const bigMs = await repeatMedian(LINK_FRAMES, () => drainMs(big));
    const tinyMs = await repeatMedian(LINK_FRAMES, () => drainMs(tinyPayload));
    const rttMs = await repeatMedian(LINK_FRAMES, echoMs);
    return { bandwidth: LINK_FRAME_BYTES / (Math.max(bigMs - tinyMs, 1e-3) / 1000), latencyMs: rttMs / 2 };
  } finally {
    await pair.dispose();
  }
}

/** Median of `runs` results of `measure` after one warm-up. */
async function repeatMedian(runs: number, measure: () => Promise<number>): Promise<number> {
  await measure();
  const values: number[] = [];
  for (let i = 0; i < runs; i++) values.push(await measure());
  return values.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

const tinyPayload = new Uint8Array(1);

interface Pair {
  readonly local: Transport;
  run(command: PeerCommand): Promise<unknown>;
  dispose(): Promise<unknown>;
}

/** Rank 0 here and rank 1 in-process (inproc) or in a child process (ws, shm), as @seqpar/transport's bench does. */
async function openPair(kind: TransportKind): Promise<Pair> {
  const transport = await import('@seqpar/transport');
  if (kind === 'inproc') {
    const [local, peer] = transport.createInprocGroup(2);
    return { local: local!, run: (command) => transport.runPeerCommand(peer!, command), dispose: () => Promise.all([local!.close(), peer!.close()]) };
  }
  const token = `calibrate-${Math.random()}`;
  const rendezvous = await transport.startRendezvous({ worldSize: 2, token });
  const options = { worldSize: 2, token, rendezvous: rendezvous.address };
  const peer = transport.spawnPeerProcess(kind, { ...options, rank: 1 });
  try {
    const local = await transport.createTransport(kind, { ...options, rank: 0 });
    await peer.ready;
    return { local, run: (command) => peer.run(command), dispose: () => Promise.all([local.close(), peer.kill(), rendezvous.close()]) };
  } catch (error) {
    await Promise.all([peer.kill(), rendezvous.close()]);
    throw error;
  }
}
