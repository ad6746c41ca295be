import { choosePlan, hostProfile, type Plan } from '@seqpar/planner';
import type { StrategyName } from '@seqpar/strategies';
import { log } from './output.js';

export interface AutoRequest {
  readonly seq: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly causal: boolean;
  readonly documents?: readonly number[];
  readonly window?: number;
  readonly workers: number;
  readonly transport: string;
  /** A running cluster runs every request on all its workers: the plan may only pick that degree or one. */
  readonly fixedDegree?: boolean;
}

export interface AutoChoice {
  readonly strategy: StrategyName;
  readonly workers: number;
  /** usp: the planner's workers per all-to-all group. */
  readonly ulyssesDegree?: number;
  readonly plan: Pick<Plan, 'strategy' | 'degree' | 'ulyssesDegree' | 'predictedMs' | 'profile'>;
}

/**
 * `--strategy auto`: the planner picks the strategy and degree for this request from this host's calibrated
 * profile (`seqpar plan --calibrate`) where one was saved, else the declared local profile of the transport.
 */
export function chooseAuto(request: AutoRequest): AutoChoice {
  const { workers, transport, fixedDegree, ...workload } = request;
  const profile = hostProfile(transport);
  const plan = choosePlan(workload, profile, { maxWorkers: workers, fixedDegree: fixedDegree ?? false });
  const sharded = plan.degree > 1 && plan.strategy !== 'single';
  const strategy: StrategyName = sharded ? plan.strategy : 'single';
  const degree = !sharded ? 1 : fixedDegree ? workers : plan.degree;
  log(`auto: ${strategy} on ${degree} worker(s) (profile ${profile.name}, predicted ${plan.predictedMs.toFixed(1)} ms)`);
  return {
    strategy,
    workers: degree,
    ...(strategy === 'usp' ? { ulyssesDegree: plan.ulyssesDegree } : {}),
    plan: { strategy: plan.strategy, degree: plan.degree, ulyssesDegree: plan.ulyssesDegree, predictedMs: plan.predictedMs, profile: plan.profile },
  };
}
