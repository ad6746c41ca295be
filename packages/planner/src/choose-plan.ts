import { SeqparError, STRATEGY_NAMES, UsageError, type LayoutKind, type StrategyName } from '@seqpar/core';
import { STRATEGIES } from '@seqpar/strategies';
import { estimateCost } from './cost-model.js';
import { describeSchedule } from './describe-schedule.js';
import { choosePassMode } from './pass-rule.js';
import type { HardwareProfile } from './profiles.js';
import type { PassMode } from './schedule.js';
import { ulyssesRefusal } from './ulysses-schedule.js';
import { uspDegrees, uspRefusal } from './usp-schedule.js';
import { checkWorkload, DEFAULT_HEADS, type AttentionWorkload } from './workload.js';

export interface PlanRequest {
  readonly seq: number;
  readonly prefix?: number;
  readonly causal?: boolean;
  /** Packed documents' lengths (sum `seq`): only their visible pairs are priced. */
  readonly documents?: readonly number[];
  /** Sliding window (causal). */
  readonly window?: number;
  readonly heads?: number;
  readonly kvHeads?: number;
  readonly headDim?: number;
  /** Defaults to the profile's wire element size. */
  readonly bytesPerElement?: number;
}

export interface PlanOptions {
  readonly maxWorkers: number;
  /** Bytes one rank may hold; defaults to the profile's device memory. */
  readonly memoryBudget?: number;
  /** Strategies to consider; all by default. */
  readonly strategies?: readonly StrategyName[];
  /** Shard over exactly maxWorkers ranks (or none), as on a cluster whose workers are all up: its groups are fixed. */
  readonly fixedDegree?: boolean;
}

export interface PlanAlternative {
  readonly strategy: StrategyName;
  readonly degree: number;
  /** Ranks per all-to-all group: U for usp, the degree for ulysses, 1 for the others. */
  readonly ulyssesDegree: number;
  readonly predictedMs: number;
  readonly peakMemoryBytes: number;
  readonly feasible: boolean;
  readonly reason?: string;
}

export interface Plan {
  readonly strategy: StrategyName;
  readonly degree: number;
  /** Ranks per all-to-all group: U for usp, the degree for ulysses, 1 for the others. */
  readonly ulyssesDegree: number;
  readonly layout: LayoutKind;
  readonly passKvOrQ: PassMode;
  readonly predictedMs: number;
  readonly peakMemoryBytes: number;
  readonly profile: string;
  /** Each strategy at its best degree (or why it cannot run), fastest first. */
  readonly alternatives: readonly PlanAlternative[];
  /** Why the plan uses fewer ranks than it was allowed, when it does. */
  readonly note?: string;
}

/**
 * Among equal predictions prefer no sharding, then balanced layouts; plain ring last (it is dominated when causal).
 * Without a causal mask every layout does the same work, and ring's contiguous shares ship as one run of rows each,
 * where zigzag cuts them in two and striped in single rows: there ring comes first (measured on the planner grid's
 * non-causal cells: ring as fast as zigzag or faster in 7 of 10, than striped in 9 of 10).
 */
const CAUSAL_PREFERENCE: readonly StrategyName[] = ['single', 'zigzag', 'striped', 'token-ring', 'ulysses', 'usp', 'ring'];
const NON_CAUSAL_PREFERENCE: readonly StrategyName[] = ['single', 'ring', 'zigzag', 'token-ring', 'ulysses', 'usp', 'striped'];

const PASS_OF: Readonly<Record<StrategyName, PassMode>> = {
  single: 'none',
  ring: 'pass-kv',
  striped: 'pass-kv',
  zigzag: 'pass-kv',
  'token-ring': 'pass-q',
  ulysses: 'none',
  usp: 'pass-kv',
};

export function workloadOf(request: PlanRequest, profile: HardwareProfile): AttentionWorkload {
  const w: AttentionWorkload = {
    seq: request.seq,
    prefix: request.prefix ?? 0,
    causal: request.causal ?? false,
    ...(request.documents ? { documents: request.documents } : {}),
    ...(request.window !== undefined ? { window: request.window } : {}),
    heads: request.heads ?? DEFAULT_HEADS.heads,
    kvHeads: request.kvHeads ?? DEFAULT_HEADS.kvHeads,
    headDim: request.headDim ?? DEFAULT_HEADS.headDim,
    bytesPerElement: request.bytesPerElement ?? profile.bytesPerElement,
  };
  checkWorkload(w);
  return w;
}

/**
 * Picks the strategy and degree (<= maxWorkers) with the lowest predicted time that fits the memory budget.
 * Sharding must pay for its communication, so short requests stay on one rank. With a cached prefix the
 * pass-KV/pass-Q rule (pass-rule.ts) decides which ring family may run.
 */
export function choosePlan(request: PlanRequest, profile: HardwareProfile, options: PlanOptions): Plan {
  if (!Number.isInteger(options.maxWorkers) || options.maxWorkers < 1) throw new UsageError(`workers must be a positive integer (got ${options.maxWorkers})`);
  const w = workloadOf(request, profile);
  const budget = options.memoryBudget ?? profile.deviceMemoryBytes;
  const rulePass = w.prefix > 0 && options.maxWorkers > 1 ? choosePassMode(w, options.maxWorkers, profile) : undefined;
  const alternatives = (options.strategies ?? STRATEGY_NAMES).map((strategy) => bestDegree(strategy, w, profile, options, budget, rulePass));
  const preference = w.causal ? CAUSAL_PREFERENCE : NON_CAUSAL_PREFERENCE;
  alternatives.sort((a, b) => Number(b.feasible) - Number(a.feasible) || a.predictedMs - b.predictedMs || preference.indexOf(a.strategy) - preference.indexOf(b.strategy));
  const best = alternatives[0];
  if (!best?.feasible) {
    throw new SeqparError('ERR_NO_FEASIBLE_PLAN', `no strategy fits: ${alternatives.map((a) => `${a.strategy} (${a.reason})`).join('; ')}`);
  }
  return {
    strategy: best.strategy,
    degree: best.degree,
    ulyssesDegree: best.ulyssesDegree,
    layout: STRATEGIES[best.strategy].layout,
    passKvOrQ: PASS_OF[best.strategy],
    predictedMs: best.predictedMs,
    peakMemoryBytes: best.peakMemoryBytes,
    profile: profile.name,
    alternatives,
    ...degreeNote(best, profile, options.maxWorkers),
  };
}

function degreeNote(best: PlanAlternative, profile: HardwareProfile, maxWorkers: number): { note?: string } {
  if (best.degree >= maxWorkers) return {};
  const units = profile.computeUnits;
  if (units !== undefined && units < maxWorkers && best.degree === units) {
    return { note: `degree capped at ${units} of ${maxWorkers} workers: profile '${profile.name}' has ${units} compute units, and ranks beyond them only share those` };
  }
  if (best.degree === 1) return { note: `one rank of ${maxWorkers}: no sharded plan is predicted faster; sharding pays for its communication only on longer requests` };
  return { note: `${best.degree} of ${maxWorkers} workers: more ranks are predicted slower (each adds communication and cuts less compute)` };
}

/** Degrees worth trying: powers of two up to the worker count, and the worker count itself. */
export function candidateDegrees(maxWorkers: number): number[] {
  const degrees = new Set<number>();
  for (let d = 2; d <= maxWorkers; d *= 2) degrees.add(d);
  if (maxWorkers > 1) degrees.add(maxWorkers);
  return [...degrees];
}

function bestDegree(strategy: StrategyName, w: AttentionWorkload, profile: HardwareProfile, options: PlanOptions, budget: number, rulePass: PassMode | undefined): PlanAlternative {
  const { maxWorkers } = options;
  // Ranks beyond the compute units a host shares add steps and messages but no compute (measured: zigzag on 4
  // workers of this 2-core host is 1.15x slower than on 2; bench-results/planner.md).
  const sharded = options.fixedDegree ? (maxWorkers > 1 ? [maxWorkers] : []) : candidateDegrees(Math.min(maxWorkers, profile.computeUnits ?? maxWorkers));
  const degrees = strategy === 'single' ? [1] : sharded;
  if (degrees.length === 0) return { strategy, degree: 2, ulyssesDegree: 1, predictedMs: Infinity, peakMemoryBytes: 0, feasible: false, reason: 'needs at least 2 workers' };
  // usp at every U it can run with (U = 1 and U = N compute what zigzag and ulysses do, at their own cost).
  const tried = degrees.flatMap((degree) =>
    strategy === 'usp'
      ? uspDegrees(w, degree).map((u) => evaluate(strategy, w, profile, degree, u, budget, rulePass))
      : [evaluate(strategy, w, profile, degree, undefined, budget, rulePass)],
  );
  const feasible = tried.filter((o) => o.feasible).sort((a, b) => a.predictedMs - b.predictedMs);
  return feasible[0] ?? tried[tried.length - 1]!;
}

function evaluate(
  strategy: StrategyName,
  w: AttentionWorkload,
  profile: HardwareProfile,
  degree: number,
  uspDegree: number | undefined,
  budget: number,
  rulePass: PassMode | undefined,
): PlanAlternative {
  const ulyssesDegree = strategy === 'ulysses' ? degree : (uspDegree ?? 1);
  const refusal = strategy === 'ulysses' ? ulyssesRefusal(w, degree) : strategy === 'usp' ? uspRefusal(w, degree, ulyssesDegree) : undefined;
  if (refusal) return { strategy, degree, ulyssesDegree, predictedMs: Infinity, peakMemoryBytes: 0, feasible: false, reason: refusal };
  const cost = estimateCost(describeSchedule(strategy, w, degree, ulyssesDegree), profile);
  const base = { strategy, degree, ulyssesDegree, predictedMs: cost.predictedMs, peakMemoryBytes: cost.peakMemoryBytes };
  if (cost.peakMemoryBytes > budget) {
    return { ...base, feasible: false, reason: `needs ${(cost.peakMemoryBytes / 2 ** 30).toFixed(2)} GiB per rank, over the ${(budget / 2 ** 30).toFixed(2)} GiB budget` };
  }
  const pass = PASS_OF[strategy];
  if (rulePass && pass !== 'none' && pass !== rulePass) return { ...base, feasible: false, reason: `the cached prefix calls for ${rulePass} (the pass-KV/pass-Q rule)` };
  return { ...base, feasible: true };
}
