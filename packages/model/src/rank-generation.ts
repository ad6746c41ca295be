import { layoutPositions, SeqparError, seededRandom, type Tensor } from '@seqpar/core';
import { STRATEGIES, type RankContext, type StrategyName } from '@seqpar/strategies';
import { barrier, broadcast } from '@seqpar/transport';
import { decodeRank, prefillRank, releaseRankState } from './rank-inference.js';
import type { RankModel } from './rank-model.js';
import { sampleToken, type SamplingOptions } from './sampling.js';

/** What every rank of one generation is told; the same on all of them. */
export interface RankGenerationOptions extends SamplingOptions {
  readonly strategy: StrategyName;
  readonly maxNewTokens: number;
  readonly seed?: number;
  /** Keep the prefill logits of every prompt position this rank holds (for --dump-logits). */
  readonly allLogits?: boolean;
  /**
   * Decode all `maxNewTokens` even past an end-of-sequence token. For benchmarks: a tiny random model's greedy
   * stream can hit EOS after a few tokens (at 32k, after 7), and a decode rate averaged over so few steps is
   * mostly the first step's one-off cost.
   */
  readonly ignoreEos?: boolean;
}

export interface RankGenerationEvents {
  /** On the rank that sampled it, as soon as it is sampled (before the other ranks have it). */
  readonly onToken?: (token: number, index: number) => void;
  readonly onPrefillLayer?: (layer: number) => void;
}

export interface RankGenerationResult {
  /** Global positions of this rank's prompt tokens, in the order of `logits` rows. */
  readonly positions: Int32Array;
  /** Prompt logits of this rank's tokens [t, V], with `allLogits`. */
  readonly logits?: Tensor;
  /** MiB of KV cache this rank held (all layers, reserved decode rows included). */
  readonly kvCacheMb: number;
}

/**
 * One rank's whole generation, the same whether the ranks are tasks of one process or worker processes:
 * sequence-parallel prefill with the chosen strategy, then decoding with the KV cache kept sharded (each new
 * token's K/V go to rank position mod N; attention over the cache is pass-Q). The rank holding the logits of a
 * step (the last prompt position's holder, then each decode step's owner) samples the token and broadcasts it
 * over the data plane, so every rank runs the same loop and stops at the same token. The KV cache lives only as
 * long as this call.
 */
export async function generateOnRank(
  ctx: RankContext,
  model: RankModel,
  prompt: Int32Array,
  options: RankGenerationOptions,
  events: RankGenerationEvents = {},
): Promise<RankGenerationResult> {
  const degree = ctx.worldSize;
  // New tokens go round-robin to the ranks, so each rank's cache needs room for its share of them.
  const reserve = Math.ceil(options.maxNewTokens / degree);
  const prefill = await prefillRank(ctx, model, options.strategy, prompt, options.allLogits ?? false, reserve, events.onPrefillLayer);
  const { vocabSize, eosTokenIds } = model.config;
  const random = seededRandom(options.seed ?? 0);
  const eos = new Set(options.ignoreEos ? [] : eosTokenIds);
  // Every rank draws the step's number, so the seeded stream stays in step wherever the sampling rank is.
  const next = async (index: number, sampler: number, logits: Tensor | undefined): Promise<number> => {
    const draw = random();
    let token: number | undefined;
    if (ctx.rank === sampler) {
      token = sampleToken(logits!.data.subarray(logits!.data.length - vocabSize), options, () => draw);
      events.onToken?.(token, index);
    }
    const message = token === undefined ? undefined : { header: { token } };
    const frame = await broadcast(ctx.transport, sampler, `${ctx.tagPrefix}token${index}`, message, { timeoutMs: ctx.timeoutMs, ...(ctx.signal ? { signal: ctx.signal } : {}) });
    return Number(frame.header.token);
  };
  try {
    // The ranks finish prefill at different times (one starts late or lags a layer: 70-340 ms at 16-32k here), and the
    // first decode step needs all of them. The first token waits for the slowest, so TTFT is the whole sharded
    // prefill, not the sampling rank's part of it, and the decode rate measures decoding, not the prefill's tail.
    await barrier(ctx.transport, `${ctx.tagPrefix}prefilled`, { timeoutMs: ctx.timeoutMs, ...(ctx.signal ? { signal: ctx.signal } : {}) });
    let token = await next(0, lastPositionHolder(options.strategy, prompt.length, degree), prefill.logits);
    for (let index = 1; index < options.maxNewTokens && !eos.has(token); index++) {
      if (ctx.signal?.aborted) throw new SeqparError('ERR_ABORTED', 'generation aborted');
      const position = prompt.length + index - 1;
      const owner = position % degree;
      const logits = await decodeRank(ctx, model, prefill, index - 1, token, position, owner);
      token = await next(index, owner, logits);
    }
  } finally {
    await releaseRankState(prefill); // the cache lives on the compute thread, which outlives this call
  }
  return {
    positions: prefill.positions,
    kvCacheMb: prefill.caches.reduce((sum, cache) => sum + cache.bytes, 0) / 2 ** 20,
    ...(options.allLogits ? { logits: prefill.logits } : {}),
  };
}

/** The rank whose shard holds the prompt's last position (its logits give the first new token). */
export function lastPositionHolder(strategy: StrategyName, seq: number, degree: number): number {
  const layout = STRATEGIES[strategy].layout;
  for (let rank = 0; rank < degree; rank++) {
    const positions = layoutPositions(layout, seq, degree, rank);
    if (positions[positions.length - 1] === seq - 1) return rank;
  }
  throw new SeqparError('ERR_INTERNAL', `no rank holds position ${seq - 1} of ${seq}`);
}
