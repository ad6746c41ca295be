import type { KernelTable } from './kernel-table.js';
import type { Topology } from './topology.js';

/**
 * What the cost model and the simulator need to know about one device kind and the fabric between devices.
 * Declared profiles below come from datasheets with a stated derating; a calibrated profile (the future
 * `seqpar plan --calibrate`) measures the same fields on real workers and saves them as JSON (profile-file.ts).
 */
export interface HardwareProfile {
  readonly name: string;
  /** Where the figures come from (datasheet, paper, or "calibrated on <host> at <date>"). */
  readonly source: string;
  /** Achievable FLOP/s of the block-attention kernel on one device, on blocks large enough to saturate it. */
  readonly attentionFlops: number;
  /**
   * FLOP/s of the kernel on causally masked blocks, when it differs (this CPU build runs them on a tiled graph
   * instead of ORT's fused op); absent means attentionFlops.
   */
  readonly causalAttentionFlops?: number;
  /** Fixed cost of one kernel call (launch, graph dispatch), ms. */
  readonly kernelLaunchMs: number;
  /** Fixed cost of one schedule step on a rank (stream sync, frame headers, event-loop hops), ms. */
  readonly stepOverheadMs: number;
  /** Bytes/s the device moves through memory: merges of partial results are bound by it. */
  readonly memoryBandwidth: number;
  /** Bytes/s one device can send (and, separately, receive) over the fabric: one direction of its port (within a host, with `topology`). */
  readonly linkBandwidth: number;
  /** One-way latency of a message between two devices, ms (within a host, with `topology`). */
  readonly linkLatencyMs: number;
  /** Hosts x devices per host and the link between hosts; absent means every device shares the link above. */
  readonly topology?: Topology;
  /** Memory one rank may use, bytes. */
  readonly deviceMemoryBytes: number;
  /** Bytes per element of q, k, v and out on the wire (2 for bf16 on GPUs, 4 for this CPU build's float32). */
  readonly bytesPerElement: number;
  /**
   * Fixed cost of running a request sharded rather than on one rank (handing shards to workers, gathering the
   * results), ms; absent means 0, as when the tensors already live on the devices.
   */
  readonly shardingOverheadMs?: number;
  /** How many ranks can compute at once (cores shared by worker processes); absent means one device each. */
  readonly computeUnits?: number;
  /**
   * The kernel timed call by call at the shapes the strategies cut blocks into, alone and with every compute unit
   * busy (kernel-table.ts): what calls cost on this host, round trips included. Absent means the FLOP/s above.
   */
  readonly kernelTable?: KernelTable;
  /**
   * Cost per MiB of the request's tensors (q, k, v in, out and lse back, float32) on their way from the caller to
   * the ranks and back: the coordinator's and workers' frame copies into fresh memory. Paid sharded or not;
   * absent means 0, as when the tensors already live on the devices.
   */
  readonly requestMsPerMiB?: number;
  /** Cost per MiB of copying into a freshly allocated buffer (page faults included); absent means memoryBandwidth. */
  readonly freshCopyMsPerMiB?: number;
  /** Cost per MiB of merging one call's partial result into an accumulator (read both, write one); absent means memoryBandwidth. */
  readonly mergeMsPerMiB?: number;
  /**
   * Threads that run the ranks' host-side work (copies into fresh buffers, merges): in-process ranks (the inproc
   * transport) share one JavaScript thread, so that work serialises across ranks. Absent means one per rank.
   */
  readonly hostThreads?: number;
}

const GB = 1e9;
const GiB = 2 ** 30;
const TFLOPS = 1e12;

/**
 * What the local profiles share; they differ in the transport between workers. The kernel table (calls timed at
 * the strategies' shapes, alone and two at once, and their slowdown inside a two-worker request), merge, request and
 * sharding figures are one `seqpar plan --calibrate` run on this 2-core host (AttentionKernel on one ORT thread;
 * the bench's profile, bench-results/planner-profile.json); calibrate afresh for another host.
 */
const LOCAL_HOST = {
  kernelTable: {
    heads: 8,
    headDim: 64,
    launchMs: 0.32,
    inRequestFactor: 1.01,
    queryRows: [64, 128, 256, 512],
    keyRows: [64, 256, 1024, 4096, 16384],
    aloneMs: [
      [0.56, 1.17, 4.73, 14.91, 65.42],
      [0.94, 1.63, 6.11, 21.08, 96.04],
      [1.15, 2.39, 9.01, 37.65, 144.96],
      [2.03, 4.82, 15.57, 66.74, 261.28],
    ],
    sharedMs: [
      [0.57, 1.76, 5.17, 21.13, 102.46],
      [1.13, 2.46, 7.49, 25.75, 125.24],
      [2, 2.82, 9.91, 49.84, 179.29],
      [2.18, 5.4, 16.71, 82.54, 314.16],
    ],
    causalRows: [64, 128, 256, 512],
    causalAloneMs: [0.54, 0.78, 2.45, 7.31],
    causalSharedMs: [0.53, 0.81, 2.62, 8.61],
  },
  attentionFlops: 66 * GB,
  causalAttentionFlops: 37 * GB,
  kernelLaunchMs: 0.32,
  memoryBandwidth: 9 * GB,
  requestMsPerMiB: 0.31,
  freshCopyMsPerMiB: 0.13,
  mergeMsPerMiB: 0.27,
  shardingOverheadMs: 0.68,
  stepOverheadMs: 0.1,
  linkLatencyMs: 0.05,
  deviceMemoryBytes: 8 * GiB,
  bytesPerElement: 4,
  computeUnits: 2,
} as const;

/** One H100 SXM5 and its NVLink 4 port (sources below). */
const H100_NVLINK = {
  attentionFlops: 0.35 * 989 * TFLOPS,
  kernelLaunchMs: 0.005,
  stepOverheadMs: 0.02,
  memoryBandwidth: 3350 * GB,
  linkBandwidth: 0.8 * 450 * GB,
  linkLatencyMs: 0.01,
  deviceMemoryBytes: 80 * GB,
  bytesPerElement: 2,
} as const;

/**
 * Sources:
 *  - H100 SXM5: 989 TFLOP/s dense BF16, 3.35 TB/s HBM3, 80 GB, NVLink 4 at 900 GB/s total = 450 GB/s per direction
 *    (NVIDIA H100 Tensor Core GPU datasheet). H800 SXM5: same compute, NVLink cut to 400 GB/s total = 200 per
 *    direction (NVIDIA H800 product brief).
 *  - A100 SXM4 80GB: 312 TFLOP/s dense BF16, 2.04 TB/s HBM2e, NVLink 3 at 600 GB/s total = 300 per direction;
 *    A100 PCIe 80GB: 312 TFLOP/s, 1.94 TB/s, PCIe Gen4 x16 = 32 GB/s per direction raw (NVIDIA A100 datasheet).
 *  - Kernel derating: FlashAttention-2 forward reaches 50-73% of peak on A100 (Dao, 2023, "FlashAttention-2",
 *    §4.1) — we take 60%; on H100 FA2 reaches ~35-40% of the 989 peak (Shah et al., 2024, "FlashAttention-3",
 *    Fig. 5: ~335-370 TFLOP/s forward) — we take 35%.
 *  - Link derating: NCCL point-to-point reaches ~80% of the NVLink per-direction figure (nccl-tests sendrecv busbw);
 *    PCIe Gen4 x16 delivers ~25 GB/s of its 32 after protocol overhead. Latencies: ~10 us for NCCL send/recv over
 *    NVLink, ~15 us through a PCIe switch (nccl-tests small-message times).
 *  - Launch ~5 us per CUDA kernel; ~20 us per ring step for the NCCL/stream synchronisation around it.
 */
export const DECLARED_PROFILES: Readonly<Record<string, HardwareProfile>> = {
  'h100-nvlink': {
    name: 'h100-nvlink',
    source: 'NVIDIA H100 SXM5 datasheet; FA2 at 35% of 989 TFLOP/s (FlashAttention-3 paper); NVLink 4 450 GB/s/dir at 80%',
    ...H100_NVLINK,
  },
  'h800-nvlink': {
    name: 'h800-nvlink',
    source: 'NVIDIA H800 SXM5: H100 compute, NVLink 400 GB/s total = 200 GB/s/dir at 80%',
    ...H100_NVLINK,
    linkBandwidth: 0.8 * 200 * GB,
  },
  'a100-nvlink': {
    name: 'a100-nvlink',
    source: 'NVIDIA A100 SXM4 80GB datasheet; FA2 at 60% of 312 TFLOP/s (FlashAttention-2 paper); NVLink 3 300 GB/s/dir at 80%',
    attentionFlops: 0.6 * 312 * TFLOPS,
    kernelLaunchMs: 0.005,
    stepOverheadMs: 0.02,
    memoryBandwidth: 2039 * GB,
    linkBandwidth: 0.8 * 300 * GB,
    linkLatencyMs: 0.01,
    deviceMemoryBytes: 80 * GB,
    bytesPerElement: 2,
  },
  'a100-pcie': {
    name: 'a100-pcie',
    source: 'NVIDIA A100 PCIe 80GB datasheet; FA2 at 60% of 312 TFLOP/s; PCIe Gen4 x16 ~25 GB/s/dir effective',
    attentionFlops: 0.6 * 312 * TFLOPS,
    kernelLaunchMs: 0.005,
    stepOverheadMs: 0.02,
    memoryBandwidth: 1935 * GB,
    linkBandwidth: 25 * GB,
    linkLatencyMs: 0.015,
    deviceMemoryBytes: 80 * GB,
    bytesPerElement: 2,
  },
  /**
   * This 2-core machine, as createCluster runs it by default (inproc transport, one ORT thread per worker, all ranks'
   * host work on one JavaScript thread): kernel, request and sharding figures from one `--calibrate` run (LOCAL_HOST); inproc frames ~1.9 GB/s with a 20 us
   * round trip between processes' event loops (bench-results/transport.md; we take 50 us one way with the hops);
   * memcpy 12-17 GB/s. Two cores: at most two ranks compute at once. Memory: a conservative 8 GiB per worker of
   * the host's RAM. `seqpar plan --calibrate` measures afresh.
   */
  local: {
    name: 'local',
    hostThreads: 1,
    source: 'seqpar plan --calibrate on this 2-core host (kernel calls 64..512 x 64..16384 rows, alone and two at once) + bench-results/transport.md (inproc ~1.9 GB/s, ~50 us)',
    ...LOCAL_HOST,
    linkBandwidth: 1.9 * GB,
  },
  /** As `local`, over POSIX shared memory between processes (bench-results/transport.md: 10.8 GB/s at 8 MiB). */
  'local-shm': { name: 'local-shm', source: 'as local, shm transport ~10 GB/s (bench-results/transport.md)', ...LOCAL_HOST, linkBandwidth: 10 * GB },
  /**
   * Four workers of this host as two "hosts" of two: within a group shm as in `local-shm`; between the groups every
   * directed link shaped to 1 Gbit/s and 0.5 ms by the link shaper (ClusterOptions.links), the local stand-in for
   * two machines on Ethernet.
   */
  'local-2x2': {
    name: 'local-2x2',
    source: 'as local-shm; 2 groups x 2 workers, links between the groups shaped to 1 Gbit/s, 0.5 ms each (link shaper)',
    ...LOCAL_HOST,
    linkBandwidth: 10 * GB,
    topology: { hosts: 2, devicesPerHost: 2, interHost: { bandwidth: 0.125 * GB, latencyMs: 0.5, port: 'pair' } },
  },
  /**
   * Two DGX-style H100 hosts: NVLink within a host as `h100-nvlink`; between hosts one ConnectX-7 400 Gb/s
   * InfiniBand NIC per GPU (DGX H100: 8 x 400 Gb/s compute ports), 50 GB/s per direction at 80% as NCCL's
   * inter-node sendrecv reaches, ~20 us one way (nccl-tests small messages across nodes).
   */
  'h100-2x8-ib': {
    name: 'h100-2x8-ib',
    source: '2 hosts x 8 H100 SXM5: NVLink 4 within (as h100-nvlink), 400 Gb/s InfiniBand per GPU between (50 GB/s/dir at 80%, 20 us)',
    ...H100_NVLINK,
    topology: { hosts: 2, devicesPerHost: 8, interHost: { bandwidth: 0.8 * 50 * GB, latencyMs: 0.02, port: 'device' } },
  },
  /** As `local`, over WebSocket frames between processes (bench-results/transport.md: 0.53 GB/s at 8 MiB). */
  'local-ws': { name: 'local-ws', source: 'as local, ws transport ~0.5 GB/s (bench-results/transport.md)', ...LOCAL_HOST, linkBandwidth: 0.5 * GB },
};

/** Other names people use for a declared profile. */
export const PROFILE_ALIASES: Readonly<Record<string, string>> = {
  h100: 'h100-nvlink',
  h800: 'h800-nvlink',
  a100: 'a100-nvlink',
};

/** The share of a device one rank gets when `degree` ranks compute at once on `computeUnits` shared units. */
export const rankShare = (profile: HardwareProfile, degree: number): number => Math.min(1, (profile.computeUnits ?? degree) / degree);

/** FLOP/s one rank gets on unmasked blocks when `degree` ranks compute at once. */
export const rankFlops = (profile: HardwareProfile, degree: number): number => profile.attentionFlops * rankShare(profile, degree);

/** Seconds one rank's kernels spend on `flops`, `maskedFlops` of them under a causal mask, at the profile's FLOP/s. */
export function kernelSeconds(flops: number, maskedFlops: number, profile: HardwareProfile, degree: number): number {
  const causal = profile.causalAttentionFlops ?? profile.attentionFlops;
  return ((flops - maskedFlops) / profile.attentionFlops + maskedFlops / causal) / rankShare(profile, degree);
}
