import { availableParallelism, hostname, totalmem } from 'node:os';
import type { Tensor } from '@seqpar/core';
import type { AttentionKernel } from '@seqpar/kernels';
import type { PeerCommand, Transport, TransportKind } from '@seqpar/transport';
import { DECLARED_PROFILES, type HardwareProfile } from './profiles.js';

export interface CalibrationOptions {
  /** The transport the runtime will use between workers (createCluster's default on one host is inproc). */
  readonly transport?: TransportKind;
  /** ORT intra-op threads per worker, as `--threads`. */
  readonly threads?: number;
  /** Tokens of the large block the kernel is timed on (H 8, D 64). */
  readonly blockSeq?: number;
  /** Progress lines (stderr in the CLI). */
  readonly log?: (line: string) => void;
}

const HEADS = 8;
const HEAD_DIM = 64;
const LINK_FRAME_BYTES = 8 * 2 ** 20;
const LINK_FRAMES = 16;

/**
 * Measures this host as the planner sees it and returns a profile (save it with writeProfileFile): the attention
 * kernel on a large unmasked and a large causal block (FLOP/s), on a tiny block (launch cost), a 64 MiB memcpy
 * (memory bandwidth), and one direction of the transport with 8 MiB frames (bandwidth) and a 1-byte echo (latency).
 * Step and sharding overheads are not isolated here; they keep the declared `local` figures.
 * Kernels and transports load lazily so that importing the planner (and the simulator) never loads ONNX Runtime.
 */
export async function calibrateLocalProfile(options: CalibrationOptions = {}): Promise<HardwareProfile> {
  const log = options.log ?? (() => {});
  const transport = options.transport ?? 'inproc';
  const seq = options.blockSeq ?? 2048;
  const { createAttentionKernel } = await import('@seqpar/kernels');
  const kernel = await createAttentionKernel({ threads: options.threads ?? 1 });
  let kernelFigures: { attentionFlops: number; causalAttentionFlops: number; kernelLaunchMs: number };
  try {
    kernelFigures = await measureKernel(kernel, seq, log);
  } finally {
    await kernel.close();
  }
  const memoryBandwidth = measureMemcpy();
  log(`memcpy ${(memoryBandwidth / 1e9).toFixed(1)} GB/s`);
  const link = await measureLink(transport);
  log(`${transport} link ${(link.bandwidth / 1e9).toFixed(2)} GB/s one way, latency ${(link.latencyMs * 1000).toFixed(0)} us`);
  const local = DECLARED_PROFILES['local']!;
  const computeUnits = availableParallelism();
  return {
    name: `calibrated-${hostname()}`,
    source: `calibrated on ${hostname()} at ${new Date().toISOString()} (kernel ${seq}x${seq}, H ${HEADS}, D ${HEAD_DIM}, ${options.threads ?? 1} thread(s); ${transport} transport)`,
    ...kernelFigures,
    stepOverheadMs: local.stepOverheadMs,
    memoryBandwidth,
    linkBandwidth: link.bandwidth,
    linkLatencyMs: link.latencyMs,
    // Workers share the host's RAM: give each an equal share, at most the declared local figure.
    deviceMemoryBytes: Math.min(local.deviceMemoryBytes, Math.floor(totalmem() / computeUnits)),
    bytesPerElement: 4,
    shardingOverheadMs: local.shardingOverheadMs ?? 0,
    computeUnits,
  };
}

async function measureKernel(kernel: AttentionKernel, seq: number, log: (line: string) => void) {
  const q = randomTensor(seq, HEADS);
  const k = randomTensor(seq, HEADS);
  const v = randomTensor(seq, HEADS);
  const fullFlops = 4 * seq * seq * HEADS * HEAD_DIM;
  const unmaskedMs = await medianMs(3, () => kernel.attend(q, k, v, { kind: 'none' }));
  const causalMs = await medianMs(3, () => kernel.attend(q, k, v, { kind: 'causal-inclusive' }));
  const tiny = randomTensor(16, HEADS);
  const kernelLaunchMs = await medianMs(20, () => kernel.attend(tiny, tiny, tiny, { kind: 'none' }));
  // A causal block's visible pairs: S(S+1)/2 of S².
  const causalFlops = (fullFlops * (seq + 1)) / (2 * seq);
  log(`kernel ${seq}x${seq}: unmasked ${unmaskedMs.toFixed(1)} ms, causal ${causalMs.toFixed(1)} ms, 16x16 ${kernelLaunchMs.toFixed(3)} ms`);
  return { attentionFlops: (1000 * fullFlops) / unmaskedMs, causalAttentionFlops: (1000 * causalFlops) / causalMs, kernelLaunchMs };
}

function randomTensor(rows: number, heads: number): Tensor {
  const data = new Float32Array(rows * heads * HEAD_DIM);
  for (let i = 0; i < data.length; i++) data[i] = Math.random() * 2 - 1;
  return { data, shape: [rows, heads, HEAD_DIM] };
}

/** Median time of `runs` calls after an untimed warm-up (which builds the block's graph). */
function medianMs(runs: number, call: () => Promise<unknown>): Promise<number> {
  return repeatMedian(runs, async () => {
    const start = performance.now();
    await call();
    return performance.now() - start;
  });
}

function measureMemcpy(): number {
  const bytes = 64 * 2 ** 20;
  const [src, dst] = [Buffer.alloc(bytes, 1), Buffer.alloc(bytes)];
  src.copy(dst);
  const start = performance.now();
  for (let i = 0; i < 4; i++) src.copy(dst);
  return (4 * bytes) / ((performance.now() - start) / 1000);
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
