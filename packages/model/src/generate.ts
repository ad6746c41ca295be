import { setMaxListeners } from 'node:events';
import { RankRecorder, UsageError, type RankStats, type Tensor } from '@seqpar/core';
import { ComputeThread, createAttentionKernel, type ExecutionOptions } from '@seqpar/kernels';
import { STRATEGIES, type RankContext, type StrategyName } from '@seqpar/strategies';
import { createInprocGroup } from '@seqpar/transport';
import type { ModelConfig } from './config.js';
import type { LoadedModel } from './load-model.js';
import { generateOnRank, type RankGenerationOptions, type RankGenerationResult } from './rank-generation.js';
import { RankModel } from './rank-model.js';
import { streamGeneration } from './token-stream.js';

export interface GenerateOptions extends RankGenerationOptions {
  readonly workers: number;
  readonly execution?: ExecutionOptions;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  /** Called as prefill layers finish, with the prompt tokens done (all ranks advance layer by layer) and the total. */
  readonly onPrefillProgress?: (done: number, total: number) => void;
}

export interface GenerateEvent {
  readonly token: number;
  readonly index: number;
  /** With the first token of a batched cluster generation: the workers holding its KV cache, in its rank order. */
  readonly ranks?: readonly number[];
}

/** A token event from a partial reply's header (a worker's or a coordinator's): its fields, checked. */
export function tokenEvent(header: Readonly<Record<string, unknown>>): GenerateEvent {
  return { token: Number(header.token), index: Number(header.index), ...(Array.isArray(header.ranks) ? { ranks: header.ranks.map(Number) } : {}) };
}

export interface GenerateSummary {
  readonly tokens: number[];
  readonly ttftMs: number;
  readonly prefillTokensPerSec: number;
  readonly decodeTokensPerSec: number;
  readonly decodeMsPerToken: number;
  readonly strategy: StrategyName;
  readonly workers: number;
  readonly ranks: RankStats[];
  /** MiB of KV cache each rank holds (all layers, reserved decode rows included), index = rank. */
  readonly kvCacheMb: number[];
  /** [S, V] when `allLogits` was asked for. */
  readonly promptLogits?: Tensor;
}

/** Default bound on every receive of a generation (a 32k prefill on one worker takes most of a minute here). */
export const GENERATE_TIMEOUT_MS = 600_000;

/**
 * Runs a model across `workers` in-process ranks (each with its own compute thread, joined by the inproc
 * transport), each running the rank loop of rank-generation.ts. Yields tokens as they come. The runtime's
 * `cluster.generate` runs the same loop in worker processes.
 */
export async function* generateTokens(model: LoadedModel, prompt: readonly number[], options: GenerateOptions): AsyncGenerator<GenerateEvent, GenerateSummary> {
  const degree = checkGeneration(model.config, prompt, options);
  const threads = await Promise.all(Array.from({ length: degree }, () => ComputeThread.start(options.execution)));
  const transports = createInprocGroup(degree);
  // Ends every rank when one fails, the caller aborts, or the consumer stops reading.
  const stop = new AbortController();
  // Every rank's receives listen on this one signal: many ranks are many listeners by design, not a leak.
  setMaxListeners(0, stop.signal);
  const onAbort = () => stop.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) stop.abort();
  let ranks: Promise<unknown> = Promise.resolve();
  try {
    const streamed = yield* streamGeneration(prompt.length, async (push) => {
      const contexts: RankContext[] = await Promise.all(
        threads.map(async (thread, rank) => ({
          rank,
          worldSize: degree,
          transport: transports[rank]!,
          tagPrefix: '',
          timeoutMs: options.timeoutMs ?? GENERATE_TIMEOUT_MS,
          signal: stop.signal,
          kernel: await createAttentionKernel(options.execution, thread),
          recorder: new RankRecorder(rank),
        })),
      );
      const models = await Promise.all(threads.map((thread) => RankModel.load(model.config, model.weights, thread, model.dir)));
      const ids = Int32Array.from(prompt);
      const progress = prefillProgress(model.config, prompt.length, options.onPrefillProgress);
      const runs = contexts.map((ctx, rank) =>
        generateOnRank(ctx, models[rank]!, ids, options, { onToken: (token, index) => push({ token, index }), ...(rank === 0 ? { onPrefillLayer: progress } : {}) }),
      );
      ranks = Promise.allSettled(runs);
      const results = await Promise.all(runs).catch((error: unknown) => {
        stop.abort();
        throw error;
      });
      return { results, stats: contexts.map((ctx) => ctx.recorder.stats(ctx.transport.stats())) };
    });
    const { results, stats } = streamed.result;
    return summarize(streamed, options.strategy, stats, results, prompt.length, model.config.vocabSize, options.allLogits ?? false);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    stop.abort();
    await ranks;
    await Promise.all(transports.map((transport) => transport.close()));
    await Promise.all(threads.map((thread) => thread.close()));
  }
}

/** Runs `generateTokens` to the end and returns its summary. */
export async function generate(model: LoadedModel, prompt: readonly number[], options: GenerateOptions, onToken?: (event: GenerateEvent) => void): Promise<GenerateSummary> {
  const run = generateTokens(model, prompt, options);
  for (;;) {
    const next = await run.next();
    if (next.done) return next.value;
    onToken?.(next.value);
  }
}

/** Checks a generation request against the model before any rank starts; returns the number of ranks it runs on. */
export function checkGeneration(config: ModelConfig, prompt: readonly number[], options: Pick<GenerateOptions, 'strategy' | 'workers' | 'maxNewTokens'>): number {
  const { vocabSize, maxPositionEmbeddings } = config;
  if (prompt.length === 0) throw new UsageError('the prompt is empty: give at least one token', 'ERR_PROMPT');
  const bad = prompt.find((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
  if (bad !== undefined) throw new UsageError(`token id ${bad} is outside the vocabulary (0..${vocabSize - 1})`, 'ERR_PROMPT');
  if (prompt.length + options.maxNewTokens > maxPositionEmbeddings) {
    throw new UsageError(`the prompt (${prompt.length} tokens) plus ${options.maxNewTokens} new tokens exceeds max_position_embeddings (${maxPositionEmbeddings})`, 'ERR_PROMPT');
  }
  const strategy = STRATEGIES[options.strategy];
  if (!strategy) throw new UsageError(`unknown strategy '${String(options.strategy)}'`);
  const degree = options.strategy === 'single' ? 1 : options.workers;
  strategy.check(config.numHeads, config.numKvHeads, degree);
  return degree;
}

/** Rank 0's finished layers as prompt tokens done (all ranks advance layer by layer). */
export function prefillProgress(config: ModelConfig, seq: number, report?: (done: number, total: number) => void): ((layer: number) => void) | undefined {
  return report && ((layer) => report(Math.round((seq * (layer + 1)) / config.numLayers), seq));
}

/** The summary of a finished generation from its stream and every rank's result (index = rank). */
export function summarize(
  streamed: { tokens: number[]; timings: Pick<GenerateSummary, 'ttftMs' | 'prefillTokensPerSec' | 'decodeTokensPerSec' | 'decodeMsPerToken'> },
  strategy: StrategyName,
  ranks: RankStats[],
  results: ReadonlyArray<Pick<RankGenerationResult, 'positions' | 'logits' | 'kvCacheMb'>>,
  seq: number,
  vocab: number,
  allLogits: boolean,
): GenerateSummary {
  return {
    tokens: streamed.tokens,
    ...streamed.timings,
    strategy,
    workers: results.length,
    ranks,
    kvCacheMb: results.map((result) => result.kvCacheMb),
    ...(allLogits ? { promptLogits: gatherLogits(results, seq, vocab) } : {}),
  };
}

function gatherLogits(results: ReadonlyArray<Pick<RankGenerationResult, 'positions' | 'logits'>>, seq: number, vocab: number): Tensor {
  const data = new Float32Array(seq * vocab);
  for (const { positions, logits } of results) positions.forEach((p, i) => data.set(logits!.data.subarray(i * vocab, (i + 1) * vocab), p * vocab));
  return { data, shape: [seq, vocab] };
}
