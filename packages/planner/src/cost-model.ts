import { pieceMs } from './kernel-table.js';
import { kernelSeconds, rankShare, type HardwareProfile } from './profiles.js';
import type { Schedule, ScheduledMessage, ScheduleStep } from './schedule.js';
import { routeMs, routeOf } from './topology.js';

/** What one strategy at one degree is predicted to cost. */
export interface CostEstimate {
  readonly predictedMs: number;
  /** Busiest rank's compute (kernels, merges, step overheads). */
  readonly computeMs: number;
  /** Communication that compute did not hide, summed over phases. */
  readonly exposedCommMs: number;
  readonly peakMemoryBytes: number;
}

/** One rank's time on one step: on its device (kernels, step overhead) and on its host thread (copies, merges). */
export interface StepTimes {
  readonly deviceMs: number;
  readonly hostMs: number;
}

/**
 * Time one rank spends on one step while `concurrent` ranks compute at once. Kernels: with a calibrated kernel
 * table, each call at its shape's measured time (alone when it is the only one computing; with every compute unit
 * busy otherwise), so more and smaller calls cost their round trips; otherwise bound by FLOPs at the rank's share of
 * the device or by the bytes they stream (decode-sized blocks), plus a launch per call. Ranks beyond the host's
 * compute units get a share of one. Host: copies into fresh buffers and merges of partial results.
 */
export function stepTimes(step: ScheduleStep, profile: HardwareProfile, concurrent: number): StepTimes {
  const table = profile.kernelTable;
  let kernelMs: number;
  if (table) {
    const shared = concurrent > 1 && (profile.computeUnits ?? 1) > 1;
    kernelMs = step.pieces.reduce((sum, p) => sum + p.count * pieceMs(table, p, shared), 0) / rankShare(profile, concurrent);
  } else {
    const flopsMs = Math.max(1000 * kernelSeconds(step.flops, step.maskedFlops, profile, concurrent), (1000 * step.kernelBytes) / profile.memoryBandwidth);
    kernelMs = step.kernelCalls * profile.kernelLaunchMs + flopsMs;
  }
  return { deviceMs: profile.stepOverheadMs + kernelMs, hostMs: copyMs(step.copyBytes, profile) + mergeMs(step.mergeBytes, profile) };
}

/** A step's whole time on its rank when nothing else holds its host thread. */
export function stepComputeMs(step: ScheduleStep, profile: HardwareProfile, concurrent: number): number {
  const { deviceMs, hostMs } = stepTimes(step, profile, concurrent);
  return deviceMs + hostMs;
}

/** Copies into fresh buffers pay for the new pages too where that was measured (freshCopyMsPerMiB). */
const copyMs = (bytes: number, profile: HardwareProfile): number =>
  profile.freshCopyMsPerMiB === undefined ? (1000 * bytes) / profile.memoryBandwidth : (profile.freshCopyMsPerMiB * bytes) / 2 ** 20;

const mergeMs = (bytes: number, profile: HardwareProfile): number =>
  profile.mergeMsPerMiB === undefined ? (1000 * bytes) / profile.memoryBandwidth : (profile.mergeMsPerMiB * bytes) / 2 ** 20;

/**
 * What a request pays outside the ranks' steps: its tensors' way from the caller to the ranks and back (sharded
 * or not), plus the fixed price of running sharded at all.
 */
export const requestOverheadMs = (schedule: Schedule, profile: HardwareProfile): number =>
  ((profile.requestMsPerMiB ?? 0) * schedule.requestBytes) / 2 ** 20 + (schedule.degree > 1 ? (profile.shardingOverheadMs ?? 0) : 0);

/**
 * Step-synchronous estimate (the planner's fast path; @seqpar/sim replays the same schedule event by event).
 * Phase t overlaps step t's compute with the messages issued at its start and the results of step t-1 (double
 * buffering), so a phase costs max(slowest rank's compute, busiest port's traffic + latency). Phases with no
 * compute (Ulysses' all-to-alls, the last results) are fully exposed. Ranks sharing host threads (hostThreads)
 * queue their host work there, so a phase also lasts at least the ranks' host work over those threads. On a host
 * with fewer compute units than ranks (computeUnits), the phase's ranks share the units as processes share cores:
 * each busy rank's calls run at the rate of as many calls at once as there are busy ranks (up to the units), and the
 * phase lasts at least all its work, kernels and host work alike, over the units. So ranks that a causal ring
 * leaves idle on a step hand their unit to the busy ones (measured: ring on 4 workers of this 2-core host within
 * 10% of zigzag, not 1.6x it), and ranks beyond the units add their work, not their count.
 */
export function estimateCost(schedule: Schedule, profile: HardwareProfile): CostEstimate {
  const { ranks, degree } = schedule;
  const steps = Math.max(...ranks.map((r) => r.length));
  const units = profile.computeUnits;
  let predictedMs = requestOverheadMs(schedule, profile);
  let exposedCommMs = 0;
  const computeByRank = ranks.map(() => 0);
  for (let t = 0; t <= steps; t++) {
    const busy = ranks.filter((rankSteps) => (rankSteps[t]?.pieces.length ?? 0) > 0 || (rankSteps[t]?.flops ?? 0) > 0).length;
    // With computeUnits the units are shared below (the work over the units); without, every rank has its own.
    const concurrent = units === undefined ? degree : Math.min(busy, units);
    let [hostMs, deviceMs] = [0, 0];
    const computeMs = Math.max(
      0,
      ...ranks.map((rankSteps, r) => {
        const step = rankSteps[t];
        const times = step ? stepTimes(step, profile, concurrent) : { deviceMs: 0, hostMs: 0 };
        hostMs += times.hostMs;
        deviceMs += times.deviceMs;
        computeByRank[r]! += times.deviceMs + times.hostMs;
        return times.deviceMs + times.hostMs;
      }),
      hostMs / (profile.hostThreads ?? degree),
      units === undefined ? 0 : (deviceMs + hostMs) / units,
    );
    const inFlight = ranks.flatMap((rankSteps) => [...(rankSteps[t]?.sendsAtStart ?? []), ...(rankSteps[t - 1]?.sendsAtEnd ?? [])]);
    const commMs = phaseCommMs(
      inFlight.map((id) => schedule.messages[id]!),
      profile,
    );
    predictedMs += Math.max(computeMs, commMs);
    exposedCommMs += Math.max(0, commMs - computeMs);
  }
  return { predictedMs, computeMs: Math.max(...computeByRank), exposedCommMs, peakMemoryBytes: schedule.peakMemoryBytes };
}

/**
 * The busiest port's traffic in one phase, plus the slowest latency crossed: each rank sends and receives on its
 * own ports, one direction each, and with a topology on separate ports within and between hosts (topology.ts).
 */
function phaseCommMs(messages: readonly ScheduledMessage[], profile: HardwareProfile): number {
  if (messages.length === 0) return 0;
  const busyMs = new Map<string, number>();
  let latencyMs = 0;
  for (const m of messages) {
    const route = routeOf(profile, m.from, m.to);
    const ms = routeMs(route, m.bytes);
    for (const port of [route.egress, route.ingress]) busyMs.set(port, (busyMs.get(port) ?? 0) + ms);
    latencyMs = Math.max(latencyMs, route.latencyMs);
  }
  return Math.max(...busyMs.values()) + latencyMs;
}
