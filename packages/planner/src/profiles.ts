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
  /** Bytes/s one device can send (and, separately, receive) over the fabric: one direction of its port. */
  readonly linkBandwidth: number;
  /** One-way latency of a message between two devices, ms. */
  readonly linkLatencyMs: number;
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
   * The kernel's measured speed as a function of block size, for square blocks of `rows` x `rows` (H 8, D 64):
   * small blocks pay the compute thread's round trip and ORT's per-op costs, and this CPU build runs unmasked
   * blocks on ORT's fused op but causal ones on a tiled graph. Absent means the flat figures above.
   */
  readonly kernelCurve?: readonly KernelPoint[];
  /**
   * Cost per MiB of the request's tensors (q, k, v in, out and lse back, float32) on their way from the caller to
   * the ranks and back: the coordinator's and workers' frame copies into fresh memory. Paid sharded or not;
   * absent means 0, as when the tensors already live on the devices.
   */
  readonly requestMsPerMiB?: number;
  /** Cost per MiB of copying into a freshly allocated buffer (page faults included); absent means memoryBandwidth. */
  readonly freshCopyMsPerMiB?: number;
  /**
   * A rank's kernel speed while every other rank computes too, relative to alone (shared caches and memory
   * bandwidth of one host); absent means 1.
   */
  readonly concurrentKernelEfficiency?: number;
}

/** The kernel's FLOP/s on a rows x rows block, unmasked and causal (visible pairs only). */
export interface KernelPoint {
  readonly rows: number;
  readonly flops: number;
  readonly causalFlops: number;
}

const GB = 1e9;
const GiB = 2 ** 30;
const TFLOPS = 1e12;

/**
 * What the local profiles share; they differ in the transport between workers. The kernel curve, request cost,
 * sharding overhead and concurrency figures are one `seqpar plan --calibrate` run on this 2-core host (AttentionKernel
 * on one ORT thread, best of 3 after 2 warm-ups: causal graphs need two runs to settle); calibrate afresh for
 * another host.
 */
const LOCAL_HOST = {
  attentionFlops: 78 * GB,
  causalAttentionFlops: 64 * GB,
  kernelCurve: [
    { rows: 256, flops: 50 * GB, causalFlops: 26 * GB },
    { rows: 512, flops: 64 * GB, causalFlops: 41 * GB },
    { rows: 1024, flops: 73 * GB, causalFlops: 49 * GB },
    { rows: 2048, flops: 77 * GB, causalFlops: 57 * GB },
    { rows: 4096, flops: 80 * GB, causalFlops: 64 * GB },
  ],
  kernelLaunchMs: 0.23,
  stepOverheadMs: 0.1,
  memoryBandwidth: 14 * GB,
  linkLatencyMs: 0.05,
  deviceMemoryBytes: 8 * GiB,
  bytesPerElement: 4,
  requestMsPerMiB: 1.24,
  freshCopyMsPerMiB: 0.1,
  shardingOverheadMs: 0.56,
  concurrentKernelEfficiency: 0.95,
  computeUnits: 2,
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
    attentionFlops: 0.35 * 989 * TFLOPS,
    kernelLaunchMs: 0.005,
    stepOverheadMs: 0.02,
    memoryBandwidth: 3350 * GB,
    linkBandwidth: 0.8 * 450 * GB,
    linkLatencyMs: 0.01,
    deviceMemoryBytes: 80 * GB,
    bytesPerElement: 2,
  },
  'h800-nvlink': {
    name: 'h800-nvlink',
    source: 'NVIDIA H800 SXM5: H100 compute, NVLink 400 GB/s total = 200 GB/s/dir at 80%',
    attentionFlops: 0.35 * 989 * TFLOPS,
    kernelLaunchMs: 0.005,
    stepOverheadMs: 0.02,
    memoryBandwidth: 3350 * GB,
    linkBandwidth: 0.8 * 200 * GB,
    linkLatencyMs: 0.01,
    deviceMemoryBytes: 80 * GB,
    bytesPerElement: 2,
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
   * This 2-core machine, as createCluster runs it by default (inproc transport, one ORT thread per worker): kernel,
   * request and sharding figures from one `--calibrate` run (LOCAL_HOST); inproc frames ~1.9 GB/s with a 20 us
   * round trip between processes' event loops (bench-results/transport.md; we take 50 us one way with the hops);
   * memcpy 12-17 GB/s. Two cores: at most two ranks compute at once. Memory: a conservative 8 GiB per worker of
   * the host's RAM. `seqpar plan --calibrate` measures afresh.
   */
  local: {
    name: 'local',
    source: 'seqpar plan --calibrate on this 2-core host (kernel 50-80 GFLOP/s unmasked, 26-64 causal, 256-4096 rows; 1.24 ms per request MiB) + bench-results/transport.md (inproc ~1.9 GB/s, ~50 us)',
    ...LOCAL_HOST,
    linkBandwidth: 1.9 * GB,
  },
  /** As `local`, over POSIX shared memory between processes (bench-results/transport.md: 10.8 GB/s at 8 MiB). */
  'local-shm': { name: 'local-shm', source: 'as local, shm transport ~10 GB/s (bench-results/transport.md)', ...LOCAL_HOST, linkBandwidth: 10 * GB },
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

/** How fast one rank's kernels run when `degree` ranks compute at once, relative to one rank alone on a device. */
const rankSpeed = (profile: HardwareProfile, degree: number): number =>
  rankShare(profile, degree) * (degree > 1 ? (profile.concurrentKernelEfficiency ?? 1) : 1);

/** FLOP/s one rank gets on unmasked blocks when `degree` ranks compute at once. */
export const rankFlops = (profile: HardwareProfile, degree: number): number => profile.attentionFlops * rankSpeed(profile, degree);

/**
 * Seconds one rank's kernels spend on `flops`, `maskedFlops` of them under a causal mask, in blocks of about
 * `blockRows` x `blockRows` (read off the profile's kernel curve when it has one; large blocks otherwise).
 */
export function kernelSeconds(flops: number, maskedFlops: number, profile: HardwareProfile, degree: number, blockRows = Infinity): number {
  const { unmasked, causal } = kernelFlopsAt(profile, blockRows);
  return ((flops - maskedFlops) / unmasked + maskedFlops / causal) / rankSpeed(profile, degree);
}

/**
 * The kernel's FLOP/s at a block side: log-linear between calibrated points, flat beyond the largest, and below the
 * smallest in proportion to the side (small blocks are bound by per-row work: copies to and from the compute
 * thread, the O(S·H·D) ops around the attention; measured 27 -> 55 GFLOP/s from 256 to 512 rows).
 */
export function kernelFlopsAt(profile: HardwareProfile, blockRows: number): { unmasked: number; causal: number } {
  const curve = profile.kernelCurve;
  if (!curve?.length || !Number.isFinite(blockRows)) return { unmasked: profile.attentionFlops, causal: profile.causalAttentionFlops ?? profile.attentionFlops };
  const upper = curve.findIndex((p) => p.rows >= blockRows);
  if (upper <= 0 || curve[upper]!.rows === blockRows) {
    const p = curve[upper === -1 ? curve.length - 1 : upper]!;
    const scale = upper === 0 ? blockRows / p.rows : 1;
    return { unmasked: p.flops * scale, causal: p.causalFlops * scale };
  }
  const [a, b] = [curve[upper - 1]!, curve[upper]!];
  const f = Math.log(blockRows / a.rows) / Math.log(b.rows / a.rows);
  const mix = (x: number, y: number): number => x * (y / x) ** f;
  return { unmasked: mix(a.flops, b.flops), causal: mix(a.causalFlops, b.causalFlops) };
}
