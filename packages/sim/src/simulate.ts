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
  /** Mean over ranks of compute busy / wall. */
  readonly utilization: number;
  readonly rankUtilization: readonly number[];
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
  const utilization = projection.utilization.reduce((a, b) => a + b, 0) / ranks;
  return {
    strategy,
    degree: ranks,
    ...usp,
    predictedMs: projection.wallMs,
    utilization,
    rankUtilization: projection.utilization,
    idealMs: (1000 * totalFlops) / ranks / rankFlops(profile, ranks),
    peakMemoryBytes: schedule.peakMemoryBytes,
    projection,
  };
}
