import type { StrategyName } from '@seqpar/core';
import { describeSchedule, rankFlops, ulyssesRefusal, type AttentionWorkload, type HardwareProfile } from '@seqpar/planner';
import { UsageError } from '@seqpar/core';
import { project, type Projection } from './project.js';

export interface SimResult {
  readonly strategy: StrategyName;
  readonly degree: number;
  readonly predictedMs: number;
  /** Mean over ranks of compute busy / wall. */
  readonly utilization: number;
  readonly rankUtilization: readonly number[];
  /** Total request FLOPs / degree at the profile's attention FLOP/s: what perfect balance and overlap would give. */
  readonly idealMs: number;
  readonly peakMemoryBytes: number;
  readonly projection: Projection;
}

/** Projects `strategy` on `degree` ranks of `profile` (`single` always runs on one rank). */
export function simulate(strategy: StrategyName, w: AttentionWorkload, degree: number, profile: HardwareProfile): SimResult {
  const ranks = strategy === 'single' ? 1 : degree;
  const refusal = strategy === 'ulysses' ? ulyssesRefusal(w, ranks) : undefined;
  if (refusal) throw new UsageError(`ulysses: ${refusal}`);
  const schedule = describeSchedule(strategy, w, ranks);
  const projection = project(schedule, profile);
  const totalFlops = schedule.ranks.flat().reduce((sum, step) => sum + step.flops, 0);
  const utilization = projection.utilization.reduce((a, b) => a + b, 0) / ranks;
  return {
    strategy,
    degree: ranks,
    predictedMs: projection.wallMs,
    utilization,
    rankUtilization: projection.utilization,
    idealMs: (1000 * totalFlops) / ranks / rankFlops(profile, ranks),
    peakMemoryBytes: schedule.peakMemoryBytes,
    projection,
  };
}
