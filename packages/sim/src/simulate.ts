import type { StrategyName } from '@seqpar/core';
import { defaultUlyssesDegree, describeSchedule, rankFlops, ulyssesRefusal, uspRefusal, type AttentionWorkload, type HardwareProfile } from '@seqpar/planner';
import { UsageError } from '@seqpar/core';
import { project, type Projection } from './project.js';

export interface SimResult {
  readonly strategy: StrategyName;
  readonly degree: number;
  /** usp: ranks per all-to-all group. */
  readonly ulyssesDegree?: number;
  readonly predictedMs: number;
  /**
   * idealMs / predictedMs: the share of the ranks' attention throughput the schedule turns into progress, so it
   * falls exactly as the predicted time rises above the ideal (imbalance, exposed communication, per-call overhead).
   */
  readonly utilization: number;
  /** Per rank, compute busy / wall: where the imbalance sits. */
  readonly rankBusy: readonly number[];
  /** Total request FLOPs / degree at the profile's attention FLOP/s: what perfect balance and overlap would give. */
  readonly idealMs: number;
  readonly peakMemoryBytes: number;
  readonly projection: Projection;
}

/**
 * Projects `strategy` on `degree` ranks of `profile` (`single` always runs on one rank); usp with `ulyssesDegree`
 * ranks per group, by default the largest whose groups fit one host.
 */
export function simulate(strategy: StrategyName, w: AttentionWorkload, degree: number, profile: HardwareProfile, ulyssesDegree?: number): SimResult {
  const ranks = strategy === 'single' ? 1 : degree;
  const usp = strategy === 'usp' ? { ulyssesDegree: ulyssesDegree ?? defaultUlyssesDegree(w, ranks, profile) } : {};
  const refusal = strategy === 'ulysses' ? ulyssesRefusal(w, ranks) : usp.ulyssesDegree === undefined ? undefined : uspRefusal(w, ranks, usp.ulyssesDegree);
  if (refusal) throw new UsageError(`${strategy}: ${refusal}`);
  const schedule = describeSchedule(strategy, w, ranks, usp.ulyssesDegree);
  const projection = project(schedule, profile);
  const totalFlops = schedule.ranks.flat().reduce((sum, step) => sum + step.flops, 0);
  const idealMs = (1000 * totalFlops) / ranks / rankFlops(profile, ranks);
  return {
    strategy,
    degree: ranks,
    ...usp,
    predictedMs: projection.wallMs,
    utilization: projection.wallMs > 0 ? Math.min(1, idealMs / projection.wallMs) : 0,
    rankBusy: projection.utilization,
    idealMs,
    peakMemoryBytes: schedule.peakMemoryBytes,
    projection,
  };
}
