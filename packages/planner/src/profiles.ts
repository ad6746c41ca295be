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
}

const GB = 1e9;
const GiB = 2 ** 30;
const TFLOPS = 1e12;

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
   * This 2-core machine (DESIGN §6): the block-attention graph runs S=2048, H=8, D=64 (8.6 GFLOP) in ~92 ms on one
   * thread = ~90 GFLOP/s; ws frames between processes 2.4-3.2 GB/s; round trips 30-60 us; memcpy 14-17 GB/s;
   * ORT's run floor ~20 us plus feeding a block ~30 us. Two cores: at most two ranks compute at once. Memory: a
   * conservative 8 GiB per worker of the host's RAM.
   */
  local: {
    name: 'local',
    source: 'DESIGN §6 measurements on this 2-core host: kernel ~90 GFLOP/s/thread, ws ~2.5 GB/s, ~50 us latency',
    attentionFlops: 90 * GB,
    kernelLaunchMs: 0.05,
    stepOverheadMs: 0.1,
    memoryBandwidth: 15 * GB,
    linkBandwidth: 2.5 * GB,
    linkLatencyMs: 0.05,
    deviceMemoryBytes: 8 * GiB,
    bytesPerElement: 4,
    shardingOverheadMs: 2,
    computeUnits: 2,
  },
  /** As `local`, over the POSIX shared-memory transport (DESIGN §6: 29 GB/s measured on 8 MiB blocks; we take 20). */
  'local-shm': {
    name: 'local-shm',
    source: 'DESIGN §6: as local, shm transport ~20 GB/s',
    attentionFlops: 90 * GB,
    kernelLaunchMs: 0.05,
    stepOverheadMs: 0.1,
    memoryBandwidth: 15 * GB,
    linkBandwidth: 20 * GB,
    linkLatencyMs: 0.05,
    deviceMemoryBytes: 8 * GiB,
    bytesPerElement: 4,
    shardingOverheadMs: 2,
    computeUnits: 2,
  },
};

/** Other names people use for a declared profile. */
export const PROFILE_ALIASES: Readonly<Record<string, string>> = {
  h100: 'h100-nvlink',
  h800: 'h800-nvlink',
  a100: 'a100-nvlink',
};

/** FLOP/s one rank gets when `degree` ranks compute at once on `computeUnits` shared units. */
export function rankFlops(profile: HardwareProfile, degree: number): number {
  const units = profile.computeUnits ?? degree;
  return profile.attentionFlops * Math.min(1, units / degree);
}
