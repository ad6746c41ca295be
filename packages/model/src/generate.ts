import { epochNow, RankRecorder, SeqparError, seededRandom, UsageError, type RankStats, type Tensor } from '@seqpar/core';
import { ComputeThread, createAttentionKernel, type ExecutionOptions } from '@seqpar/kernels';
import { STRATEGIES, type RankContext, type StrategyName } from '@seqpar/strategies';
import { createInprocGroup } from '@seqpar/transport';
import type { LoadedModel } from './load-model.js';
import { BoundedBlockKernel } from './bounded-block-kernel.js';
import { decodeRank, prefillRank, type RankState } from './rank-inference.js';
import { RankModel } from './rank-model.js';
import { sampleToken, type SamplingOptions } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  readonly strategy: StrategyName;
  readonly workers: number;
  readonly maxNewTokens: number;
  readonly seed?: number;
  readonly execution?: ExecutionOptions;
  /** Keep the prefill logits of every prompt position (for --dump-logits). */
  readonly allLogits?: boolean;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  /** Called as prefill layers finish, with the prompt tokens done (all ranks advance layer by layer) and the total. */
  readonly onPrefillProgress?: (done: number, total: number) => void;
}

export interface GenerateEvent {
  readonly token: number;
  readonly index: number;
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

/**
 * Runs a model across `workers` in-process ranks (each with its own compute thread, joined by the inproc
 * transport): sequence-parallel prefill with the chosen strategy, then decoding with the KV cache kept sharded
 * (each new token's K/V go to rank position mod N; attention over the cache is pass-Q). Yields tokens as they come.
 */
export async function* generateTokens(model: LoadedModel, prompt: readonly number[], options: GenerateOptions): AsyncGenerator<GenerateEvent, GenerateSummary> {
  checkPrompt(model, prompt, options.maxNewTokens);
  const degree = options.strategy === 'single' ? 1 : options.workers;
  STRATEGIES[options.strategy].check(model.config.numHeads, model.config.numKvHeads, degree);
  const threads = await Promise.all(Array.from({ length: degree }, () => ComputeThread.start(options.execution)));
  const transports = createInprocGroup(degree);
  try {
    const started = epochNow();
    const ranks = await Promise.all(threads.map(async (thread, rank) => ({
      model: await RankModel.load(model.config, model.weights, thread, model.dir),
      kernel: new BoundedBlockKernel(await createAttentionKernel(options.execution, thread)),
      recorder: new RankRecorder(rank),
    })));
    const contexts: RankContext[] = ranks.map(({ kernel, recorder }, rank) => ({
      rank, worldSize: degree, transport: transports[rank]!, kernel, recorder, tagPrefix: '', timeoutMs: options.timeoutMs ?? 600_000,
      ...(options.signal ? { signal: options.signal } : {}),
    }));
    const ids = Int32Array.from(prompt);
    const layers = model.config.numLayers;
    const progress = (layer: number) => options.onPrefillProgress?.(Math.round((prompt.length * (layer + 1)) / layers), prompt.length);
    // New tokens go round-robin to the ranks, so each rank's cache needs room for its share of them.
    const reserve = Math.ceil(options.maxNewTokens / degree);
    const prefills = await Promise.all(
      contexts.map((ctx, rank) => prefillRank(ctx, ranks[rank]!.model, options.strategy, ids, options.allLogits ?? false, reserve, rank === 0 ? progress : undefined)),
    );
    const states: RankState[] = prefills;
    const lastOwner = prefills.findIndex((p) => p.positions.length > 0 && p.positions[p.positions.length - 1] === prompt.length - 1);
    const lastLogits = prefills[lastOwner]!.logits;
    const random = seededRandom(options.seed ?? 0);
    let token = sampleToken(lastLogits.data.subarray(lastLogits.data.length - model.config.vocabSize), options, random);
    const ttftMs = epochNow() - started;
    const tokens = [token];
    yield { token, index: 0 };
    const decodeStarted = epochNow();
    const eos = new Set(model.config.eosTokenIds);
    for (let step = 0; tokens.length < options.maxNewTokens && !eos.has(token); step++) {
      if (options.signal?.aborted) throw new SeqparError('ERR_ABORTED', 'generation aborted');
      const position = prompt.length + step;
      const owner = position % degree;
      const results = await Promise.all(contexts.map((ctx, rank) => decodeRank(ctx, ranks[rank]!.model, states[rank]!, step, token, position, owner)));
      token = sampleToken(results[owner]!.data, options, random);
      tokens.push(token);
      yield { token, index: tokens.length - 1 };
    }
    const decodeMs = epochNow() - decodeStarted;
    const decoded = tokens.length - 1;
    return {
      tokens,
      ttftMs,
      prefillTokensPerSec: prompt.length / (ttftMs / 1000),
      decodeTokensPerSec: decoded > 0 ? decoded / (decodeMs / 1000) : 0,
      decodeMsPerToken: decoded > 0 ? decodeMs / decoded : 0,
      strategy: options.strategy,
      workers: degree,
      ranks: contexts.map((ctx) => ctx.recorder.stats(ctx.transport.stats())),
      kvCacheMb: states.map((state) => state.caches.reduce((sum, cache) => sum + cache.bytes, 0) / 2 ** 20),
      ...(options.allLogits ? { promptLogits: gatherLogits(prefills, prompt.length, model.config.vocabSize) } : {}),
    };
  } finally {
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

function checkPrompt(model: LoadedModel, prompt: readonly number[], maxNewTokens: number): void {
  const { vocabSize, maxPositionEmbeddings } = model.config;
  if (prompt.length === 0) throw new UsageError('the prompt is empty: give at least one token', 'ERR_PROMPT');
  const bad = prompt.find((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
  if (bad !== undefined) throw new UsageError(`token id ${bad} is outside the vocabulary (0..${vocabSize - 1})`, 'ERR_PROMPT');
  if (prompt.length + maxNewTokens > maxPositionEmbeddings) {
    throw new UsageError(`the prompt (${prompt.length} tokens) plus ${maxNewTokens} new tokens exceeds max_position_embeddings (${maxPositionEmbeddings})`, 'ERR_PROMPT');
  }
}

function gatherLogits(prefills: ReadonlyArray<{ positions: Int32Array; logits: Tensor }>, seq: number, vocab: number): Tensor {
  const data = new Float32Array(seq * vocab);
  for (const { positions, logits } of prefills) positions.forEach((p, i) => data.set(logits.data.subarray(i * vocab, (i + 1) * vocab), p * vocab));
  return { data, shape: [seq, vocab] };
}
