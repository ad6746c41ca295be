import { layoutPositions, type Tensor } from '@seqpar/core';
import { passQDecode, STRATEGIES, type RankContext, type StrategyName } from '@seqpar/strategies';
import { KvCacheShare } from './kv-cache.js';
import type { RankModel } from './rank-model.js';

/** What a rank keeps between prefill and decode: its share of every layer's KV cache (on its compute thread). */
export interface RankState {
  readonly caches: KvCacheShare[];
}

/** Frees a rank's KV cache shares on its compute thread. */
export async function releaseRankState(state: RankState): Promise<void> {
  await Promise.all(state.caches.map((cache) => cache.release()));
}

export interface PrefillResult {
  /** Global positions of this rank's prompt tokens, in the order of `logits` rows. */
  readonly positions: Int32Array;
  /** Logits of this rank's tokens [t, V] (only its last token's row when `allLogits` is false). */
  readonly logits: Tensor;
}

const layerContext = (ctx: RankContext, tag: string): RankContext => ({ ...ctx, tagPrefix: `${ctx.tagPrefix}${tag}/` });

/**
 * Sequence-parallel prefill on one rank: the rank embeds and transforms its tokens (in the strategy's layout)
 * through every layer, with attention between ranks done by the strategy, and keeps its K/V for decoding, with
 * room for `reserve` more tokens.
 */
export async function prefillRank(ctx: RankContext, model: RankModel, strategyName: StrategyName, prompt: Int32Array, allLogits: boolean, reserve: number, onLayerDone?: (layer: number) => void): Promise<PrefillResult & RankState> {
  const strategy = STRATEGIES[strategyName];
  const { numKvHeads, headDim } = model.config;
  const positions = layoutPositions(strategy.layout, prompt.length, ctx.worldSize, ctx.rank);
  let x = model.embed(Array.from(positions, (p) => prompt[p]!));
  const caches: KvCacheShare[] = [];
  try {
    for (let layer = 0; layer < model.config.numLayers; layer++) {
      const { q, k, v } = await ctx.recorder.time('compute', `layer ${layer} qkv`, () => model.preAttention(layer, x, positions));
      const cache = new KvCacheShare(model.thread, numKvHeads, headDim, positions.length + reserve);
      caches.push(cache);
      await cache.append(k, v, positions);
      const attention = await strategy.run(layerContext(ctx, `p${layer}`), { q, k, v, seq: prompt.length, causal: true });
      x = await ctx.recorder.time('compute', `layer ${layer} mlp`, () => model.postAttention(layer, x, attention.out));
      onLayerDone?.(layer);
    }
    const rows = allLogits ? x : lastRow(x);
    const logits = await ctx.recorder.time('compute', 'lm head', () => model.logits(rows));
    return { positions, logits, caches };
  } catch (error) {
    await releaseRankState({ caches });
    throw error;
  }
}

/**
 * One decode step on one rank: the owner of the new token runs it through the layers; for every layer's
 * attention all ranks take part in pass-Q decode over their cache shares. Returns the logits on the owner.
 */
export async function decodeRank(ctx: RankContext, model: RankModel, state: RankState, step: number, token: number, position: number, owner: number): Promise<Tensor | undefined> {
  const isOwner = ctx.rank === owner;
  let x = isOwner ? model.embed([token]) : undefined;
  for (let layer = 0; layer < model.config.numLayers; layer++) {
    const cache = state.caches[layer]!;
    let query: { owner: number; q?: Tensor; positions?: Int32Array } = { owner };
    let appended: Promise<void> | undefined;
    if (x) {
      const { q, k, v } = await ctx.recorder.time('compute', `layer ${layer} qkv`, () => model.preAttention(layer, x!, [position]));
      // Queued ahead of the attention run on the same thread: no round trip of its own.
      appended = cache.append(k, v, [position]);
      appended.catch(() => undefined); // awaited below; this only keeps a failure from going unhandled meanwhile
      query = { owner, q, positions: Int32Array.of(position) };
    }
    const attention = await passQDecode(layerContext(ctx, `d${step}/${layer}`), query, cache);
    await appended;
    if (x && attention) x = await ctx.recorder.time('compute', `layer ${layer} mlp`, () => model.postAttention(layer, x!, attention.out));
  }
  return x ? ctx.recorder.time('compute', 'lm head', () => model.logits(x!)) : undefined;
}

function lastRow(x: Tensor): Tensor {
  const [rows, width] = x.shape as [number, number];
  return { data: x.data.subarray(Math.max(0, rows - 1) * width, rows * width), shape: [Math.min(rows, 1), width] };
}
