import { isSeqparError, shardLength, type StrategyName } from '@seqpar/core';
import type { ModelConfig } from '@seqpar/model';
import { choosePlan, type HardwareProfile } from '@seqpar/planner';
import { STRATEGIES } from '@seqpar/strategies';
import { ApiError } from './api-error.js';

/** How one request runs on the cluster, and the KV cache it makes each rank hold. */
export interface RequestPlan {
  readonly strategy: StrategyName;
  /** Ranks taking part: 1 unsharded, else every worker (a cluster shards a request over all of them). */
  readonly degree: number;
  /** Bytes of KV cache each taking rank holds for the request (prompt share plus its share of the new tokens), index = rank. */
  readonly kvBytes: number[];
}

export interface PlanLimits {
  readonly workers: number;
  /** KV cache bytes one rank may hold for a request. */
  readonly kvBudgetBytes: number;
  /** The planner picks per prompt when this is 'auto'. */
  readonly strategy: StrategyName | 'auto';
  /**
   * With 'auto', prompts shorter than this run unsharded (when one rank's KV budget holds them); longer ones go to
   * the planner. The planner minimises one request's time on an idle cluster, where sharding even a 512-token
   * prompt wins; under load a sharded request costs every rank its prefill share and an exchange per layer on
   * each decode step, while unsharded requests run side by side on different workers.
   */
  readonly shardFrom: number;
  readonly profile: HardwareProfile;
}

/**
 * Picks the strategy per prompt (short prompts unsharded, longer ones by the planner's cost model on this host's
 * profile) and refuses with 413, before any work, what the model or the KV budget cannot hold. A prompt too big for one
 * rank's budget is sharded even where one rank would be faster.
 */
export function planRequest(config: ModelConfig, promptLength: number, maxTokens: number, limits: PlanLimits): RequestPlan {
  const total = promptLength + maxTokens;
  if (total > config.maxPositionEmbeddings) {
    throw new ApiError(
      413,
      'context_length_exceeded',
      `the prompt (${promptLength} tokens) plus max_tokens (${maxTokens}) is ${total} tokens, over the model's max_position_embeddings (${config.maxPositionEmbeddings})`,
    );
  }
  const choose = (allowSingle: boolean) => planWith(config, promptLength, maxTokens, limits, allowSingle);
  let plan = choose(true);
  if (overBudget(plan, limits) && plan.degree === 1 && limits.workers > 1 && limits.strategy === 'auto') plan = choose(false);
  if (overBudget(plan, limits)) {
    const need = Math.max(...plan.kvBytes);
    throw new ApiError(
      413,
      'kv_budget_exceeded',
      `the request needs ${mib(need)} MiB of KV cache per rank (${total} tokens over ${plan.degree} rank(s)), over the cluster's KV budget of ${mib(limits.kvBudgetBytes)} MiB per rank`,
    );
  }
  return plan;
}

function planWith(config: ModelConfig, promptLength: number, maxTokens: number, limits: PlanLimits, allowSingle: boolean): RequestPlan {
  const unsharded = allowSingle && promptLength < limits.shardFrom;
  const strategy = limits.strategy !== 'auto' ? limits.strategy : unsharded ? 'single' : autoStrategy(config, promptLength, limits, allowSingle);
  const degree = strategy === 'single' ? 1 : limits.workers;
  const kvBytes = Array.from({ length: degree }, (_, rank) => kvShareBytes(config, strategy, promptLength, maxTokens, degree, rank));
  return { strategy, degree, kvBytes };
}

/** The planner's pick among the strategies a cluster of this size can run on all its workers. */
function autoStrategy(config: ModelConfig, seq: number, limits: PlanLimits, allowSingle: boolean): StrategyName {
  if (limits.workers === 1) return 'single';
  const runnable = (Object.keys(STRATEGIES) as StrategyName[]).filter((name) => {
    if (name === 'single') return allowSingle;
    try {
      STRATEGIES[name].check(config.numHeads, config.numKvHeads, limits.workers);
      return seq >= 2 * limits.workers; // every rank gets a token of every layout
    } catch {
      return false;
    }
  });
  if (runnable.length === 0) return 'single';
  const request = { seq, causal: true, heads: config.numHeads, kvHeads: config.numKvHeads, headDim: config.headDim };
  try {
    return choosePlan(request, limits.profile, { maxWorkers: limits.workers, strategies: runnable }).strategy;
  } catch (error) {
    if (isSeqparError(error) && error.code === 'ERR_NO_FEASIBLE_PLAN') throw new ApiError(413, 'no_feasible_plan', `no way to run a ${seq}-token prompt here: ${error.message}`);
    throw error;
  }
}

/** What KvCacheShare allocates on one rank: every layer's K and V rows (float32) and their positions. */
function kvShareBytes(config: ModelConfig, strategy: StrategyName, seq: number, maxTokens: number, degree: number, rank: number): number {
  const rows = shardLength(STRATEGIES[strategy].layout, seq, degree, rank) + Math.ceil(maxTokens / degree);
  return config.numLayers * rows * (2 * config.numKvHeads * config.headDim * 4 + 4);
}

const overBudget = (plan: RequestPlan, limits: PlanLimits) => Math.max(...plan.kvBytes) > limits.kvBudgetBytes;
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
