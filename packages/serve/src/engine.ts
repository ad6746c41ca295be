import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { epochNow, isSeqparError } from '@seqpar/core';
import type { GenerateEvent } from '@seqpar/model';
import type { ClusterClient, ClusterGenerateOptions } from '@seqpar/runtime';
import { ApiError, RECOVERABLE_CODES, toApiError } from './api-error.js';
import type { ServerMetrics } from './metrics.js';
import type { SamplingParams } from './protocol.js';
import { planRequest, type PlanLimits, type RequestPlan } from './request-plan.js';
import type { ServedModel } from './served-model.js';
import { SlotQueue, type Ticket } from './slot-queue.js';

export interface EngineOptions extends PlanLimits {
  /** Admitted requests that may wait for the cluster; more get 429. */
  readonly maxQueue: number;
  /** Requests running on the cluster at once (decoded together as one batch). */
  readonly maxBatch: number;
  /** Query rows per compute call of a prefill (ClusterGenerateOptions.prefillChunk). */
  readonly prefillChunk: number;
}

/** How a generation ended: its tokens, and whether it ran to its last token (EOS or max_tokens). */
export interface GenerationEnd {
  readonly tokens: number[];
  readonly complete: boolean;
}

/** An admitted request: iterate it to wait for the cluster and get its tokens as they come. */
export interface Generation extends AsyncGenerator<GenerateEvent, GenerationEnd> {
  readonly plan: RequestPlan;
  readonly promptTokens: number;
}

const PROBE_RETRY_MS = 250;

/**
 * Between the HTTP layer and the cluster: admission (413 for what the model or the KV budget cannot hold, 429
 * when the queue is full, 503 while the cluster recovers), the queue, the per-prompt plan, and the request's
 * metrics. Up to `maxBatch` requests run at once (the coordinator batches their decode steps) while the KV cache
 * they hold, summed over every rank, fits the cluster's budget (`kvBudgetBytes` per rank); the others wait here.
 * After a lost worker the cluster resets itself; a probe request tells when it serves again.
 */
export class Engine {
  private readonly queue: SlotQueue;
  private recovery: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly cluster: ClusterClient,
    private readonly model: ServedModel,
    private readonly options: EngineOptions,
    private readonly metrics: ServerMetrics,
  ) {
    this.queue = new SlotQueue(options.maxBatch, options.maxQueue, options.kvBudgetBytes * options.workers);
  }

  get recovering(): boolean {
    return this.recovery !== undefined;
  }

  /** Admits the request or refuses it with an ApiError, before any work. */
  admit(prompt: readonly number[], params: SamplingParams, signal: AbortSignal): Generation {
    if (this.recovery) throw new ApiError(503, 'cluster_recovering', 'the cluster lost a worker and is recovering: retry shortly');
    const plan = planRequest(this.model.config, prompt.length, params.maxTokens, this.options);
    let ticket: Ticket;
    try {
      ticket = this.queue.enter(plan.kvBytes.reduce((sum, bytes) => sum + bytes, 0));
    } catch (error) {
      throw toApiError(error);
    }
    this.metrics.queueDepth.set(this.queue.depth);
    this.metrics.promptTokens.inc(prompt.length);
    const run = this.run(prompt, params, plan, ticket, signal);
    return Object.assign(run, { plan, promptTokens: prompt.length });
  }

  close(): void {
    this.closed = true;
  }

  private async *run(prompt: readonly number[], params: SamplingParams, plan: RequestPlan, ticket: Ticket, signal: AbortSignal): AsyncGenerator<GenerateEvent, GenerationEnd> {
    const admitted = epochNow();
    let status = 'ok';
    // KV bytes by rank as the metric counts them: ranks 0.. until the cluster says where the request runs.
    let kv: readonly number[] | undefined;
    const tokens: number[] = [];
    try {
      await ticket.acquire(signal);
      this.gauges();
      kv = plan.kvBytes;
      this.metrics.addKv(kv, 1);
      const options: ClusterGenerateOptions = {
        strategy: plan.strategy,
        maxNewTokens: params.maxTokens,
        greedy: params.temperature === 0,
        temperature: params.temperature,
        topP: params.topP,
        seed: params.seed ?? randomInt(2 ** 31),
        ignoreEos: params.ignoreEos,
        prefillChunk: this.options.prefillChunk,
        signal,
      };
      const generation = this.cluster.generate(this.model.dir, prompt, options);
      let last = admitted;
      try {
        for (;;) {
          const next = await generation.next();
          if (next.done) return { tokens, complete: true };
          const now = epochNow();
          (tokens.length === 0 ? this.metrics.ttft : this.metrics.interToken).observe((now - last) / 1000);
          last = now;
          if (next.value.ranks) {
            const placed = onRanks(plan.kvBytes, next.value.ranks);
            this.metrics.addKv(kv, -1);
            this.metrics.addKv((kv = placed), 1);
          }
          tokens.push(next.value.token);
          this.metrics.generatedTokens.inc();
          yield next.value;
        }
      } finally {
        // The consumer left early (a stop string, a write that failed): leaving the cluster's stream cancels it there.
        await generation.return(undefined as never);
      }
    } catch (error) {
      status = signal.aborted ? 'cancelled' : 'failed';
      if (!signal.aborted && isSeqparError(error) && RECOVERABLE_CODES.has(error.code)) this.recover();
      throw error;
    } finally {
      if (signal.aborted && status === 'ok') status = 'cancelled';
      ticket.release();
      if (kv) this.metrics.addKv(kv, -1);
      this.gauges();
      this.metrics.requests.inc({ status });
    }
  }

  private gauges(): void {
    this.metrics.queueDepth.set(this.queue.depth);
    this.metrics.running.set(this.queue.active);
  }

  /** Refuses new requests with 503 until a one-token probe runs through the rebuilt cluster. */
  private recover(): void {
    if (this.recovery) return;
    this.metrics.clusterUp.set(0);
    this.recovery = (async () => {
      while (!this.closed) {
        try {
          const probe = this.cluster.generate(this.model.dir, [0], { strategy: 'single', maxNewTokens: 1, greedy: true });
          while (!(await probe.next()).done);
          return;
        } catch {
          await sleep(PROBE_RETRY_MS);
        }
      }
    })().finally(() => {
      this.recovery = undefined;
      this.metrics.clusterUp.set(1);
    });
  }
}

/** Per-rank bytes `bytes` (index = the request's own rank) placed on the cluster's `ranks`, index = cluster rank. */
function onRanks(bytes: readonly number[], ranks: readonly number[]): number[] {
  const placed = new Array<number>(Math.max(...ranks) + 1).fill(0);
  ranks.forEach((rank, i) => (placed[rank]! += bytes[i] ?? 0));
  return placed;
}
