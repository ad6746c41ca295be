import { kernelSeconds, type HardwareProfile } from './profiles.js';
import type { Schedule, ScheduledMessage, ScheduleStep } from './schedule.js';

/** What one strategy at one degree is predicted to cost. */
export interface CostEstimate {
  readonly predictedMs: number;
  /** Busiest rank's compute (kernels, merges, step overheads). */
  readonly computeMs: number;
  /** Communication that compute did not hide, summed over phases. */
  readonly exposedCommMs: number;
  readonly peakMemoryBytes: number;
}

/**
 * Time one rank spends on one step's compute: kernels bound by FLOPs at the rank's share of the device (at their
 * block size's speed) or by the bytes they stream (decode-sized blocks), and never under their launch cost; then
 * host-side copies and merges. A profile without a kernel curve pays the launches on top (its FLOP/s are large-block figures).
 */
export function stepComputeMs(step: ScheduleStep, profile: HardwareProfile, degree: number): number {
  const launchMs = step.kernelCalls * profile.kernelLaunchMs;
  const flopsMs = Math.max(1000 * kernelSeconds(step.flops, step.maskedFlops, profile, degree, step.blockRows), (1000 * step.kernelBytes) / profile.memoryBandwidth);
  const kernelMs = profile.kernelCurve ? Math.max(launchMs, flopsMs) : launchMs + flopsMs;
  return profile.stepOverheadMs + kernelMs + copyMs(step.copyBytes, profile) + (1000 * step.mergeBytes) / profile.memoryBandwidth;
}

/** Copies into fresh buffers pay for the new pages too where that was measured (freshCopyMsPerMiB). */
const copyMs = (bytes: number, profile: HardwareProfile): number =>
  profile.freshCopyMsPerMiB === undefined ? (1000 * bytes) / profile.memoryBandwidth : (profile.freshCopyMsPerMiB * bytes) / 2 ** 20;

/**
 * What a request pays outside the ranks' steps: its tensors' way from the caller to the ranks and back (sharded
 * or not), plus the fixed price of running sharded at all.
 */
export const requestOverheadMs = (schedule: Schedule, profile: HardwareProfile): number =>
  ((profile.requestMsPerMiB ?? 0) * schedule.requestBytes) / 2 ** 20 + (schedule.degree > 1 ? (profile.shardingOverheadMs ?? 0) : 0);

/** Wire time of one message on an idle link, ms. */
export const transferMs = (bytes: number, profile: HardwareProfile): number => (1000 * bytes) / profile.linkBandwidth;

/**
 * Step-synchronous estimate (the planner's fast path; @seqpar/sim replays the same schedule event by event).
 * Phase t overlaps step t's compute with the messages issued at its start and the results of step t-1 (double
 * buffering), so a phase costs max(slowest rank's compute, busiest port's traffic + latency). Phases with no
 * compute (Ulysses' all-to-alls, the last results) are fully exposed.
 */
export function estimateCost(schedule: Schedule, profile: HardwareProfile): CostEstimate {
  const { ranks, degree } = schedule;
  const steps = Math.max(...ranks.map((r) => r.length));
  let predictedMs = requestOverheadMs(schedule, profile);
  let exposedCommMs = 0;
  const computeByRank = ranks.map(() => 0);
  for (let t = 0; t <= steps; t++) {
    const computeMs = Math.max(
      0,
      ...ranks.map((rankSteps, r) => {
        const step = rankSteps[t];
        const ms = step ? stepComputeMs(step, profile, degree) : 0;
        computeByRank[r]! += ms;
        return ms;
      }),
    );
    const inFlight = ranks.flatMap((rankSteps) => [...(rankSteps[t]?.sendsAtStart ?? []), ...(rankSteps[t - 1]?.sendsAtEnd ?? [])]);
    const commMs = phaseCommMs(inFlight.map((id) => schedule.messages[id]!), degree, profile);
    predictedMs += Math.max(computeMs, commMs);
    exposedCommMs += Math.max(0, commMs - computeMs);
  }
  return { predictedMs, computeMs: Math.max(...computeByRank), exposedCommMs, peakMemoryBytes: schedule.peakMemoryBytes };
}

/** The busiest port's traffic in one phase: each rank sends and receives on its own port, one direction each. */
function phaseCommMs(messages: readonly ScheduledMessage[], degree: number, profile: HardwareProfile): number {
  if (messages.length === 0) return 0;
  const egress = new Float64Array(degree);
  const ingress = new Float64Array(degree);
  for (const m of messages) {
    egress[m.from]! += m.bytes;
    ingress[m.to]! += m.bytes;
  }
  return transferMs(Math.max(...egress, ...ingress), profile) + profile.linkLatencyMs;
}
