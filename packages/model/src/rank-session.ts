import { seededRandom, SeqparError, type Tensor } from '@seqpar/core';
import type { RankContext, StrategyName } from '@seqpar/strategies';
import { lastPositionHolder } from './rank-generation.js';
import { prefillRank, releaseRankState, type PrefillResult, type RankState } from './rank-inference.js';
import type { RankModel } from './rank-model.js';
import { sampleToken, type SamplingOptions } from './sampling.js';

/** What every rank of a session is told when it starts; the same on all of them. */
export interface SessionOptions extends SamplingOptions {
  readonly strategy: StrategyName;
  /** Decode rows reserved in the cache for the tokens to come. */
  readonly maxNewTokens: number;
  readonly seed?: number;
}

/**
 * One rank's part of a generation that lives across calls (continuous batching): its share of every layer's KV
 * cache, kept on the compute thread from prefill to release, and its seeded sampling stream. The coordinator
 * drives the session in calls of one or more steps (batched-decode.ts each); a step's token, sampled by its
 * owner, reaches the session's other ranks over the data plane within a call and in the next call's arguments
 * across calls. Every rank of a session draws one number per token, so the stream stays in step wherever the
 * sampling rank is, as in generateOnRank.
 */
export class RankSession {
  private readonly random: () => number;

  private constructor(
    readonly model: RankModel,
    /** This rank's place among the session's ranks, and their number. */
    readonly rank: number,
    readonly degree: number,
    readonly state: PrefillResult & RankState,
    private readonly sampling: SessionOptions,
  ) {
    this.random = seededRandom(sampling.seed ?? 0);
  }

  /**
   * Prefill of `prompt` over the session's ranks (`ctx`) with the session's strategy; the cache keeps room for
   * this rank's share of `maxNewTokens`. Returns the session and, on the rank holding the last prompt position,
   * the first token.
   */
  static async prefill(
    ctx: RankContext,
    model: RankModel,
    prompt: Int32Array,
    options: SessionOptions,
    onPrefillLayer?: (layer: number) => void,
  ): Promise<{ session: RankSession; token?: number }> {
    const reserve = Math.ceil(options.maxNewTokens / ctx.worldSize);
    const state = await prefillRank(ctx, model, options.strategy, prompt, false, reserve, onPrefillLayer);
    const session = new RankSession(model, ctx.rank, ctx.worldSize, state, options);
    const holder = lastPositionHolder(options.strategy, prompt.length, ctx.worldSize);
    const token = session.next(ctx.rank === holder ? state.logits : undefined);
    return { session, ...(token === undefined ? {} : { token }) };
  }

  /** The session rank that keeps the K/V of `position` and samples the token after it. */
  ownerOf(position: number): number {
    return position % this.degree;
  }

  /** Draws this token's number and, given the logits of the step's last row (on its owner), samples the token. */
  next(logits: Tensor | Float32Array | undefined): number | undefined {
    const draw = this.random();
    if (!logits) return undefined;
    const data = 'data' in logits ? logits.data : logits;
    const vocab = this.model.config.vocabSize;
    if (data.length < vocab) throw new SeqparError('ERR_INTERNAL', `a step's logits have ${data.length} values, under the vocabulary's ${vocab}`);
    return sampleToken(data.subarray(data.length - vocab), this.sampling, () => draw);
  }

  /** MiB of KV cache this rank holds for the session (all layers, reserved decode rows included). */
  get kvCacheMb(): number {
    return this.state.caches.reduce((sum, cache) => sum + cache.bytes, 0) / 2 ** 20;
  }

  release(): Promise<void> {
    return releaseRankState(this.state);
  }
}
