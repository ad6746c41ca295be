import { layoutPositions, type Tensor } from '@seqpar/core';
import type { ChainStep } from '@seqpar/kernels';
import { STRATEGIES, type RankContext, type StrategyName } from '@seqpar/strategies';
import { layerWindow } from './config.js';
import { decodeLogits } from './batched-decode.js';
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
export async function prefillRank(
  ctx: RankContext,
  model: RankModel,
  strategyName: StrategyName,
  prompt: Int32Array,
  allLogits: boolean,
  reserve: number,
  onLayerDone?: (layer: number) => void,
): Promise<PrefillResult & RankState> {
  const strategy = STRATEGIES[strategyName];
  const { numKvHeads, headDim } = model.config;
  const positions = layoutPositions(strategy.layout, prompt.length, ctx.worldSize, ctx.rank);
  let x = model.embed(Array.from(positions, (p) => prompt[p]!));
  const caches: KvCacheShare[] = [];
  try {
    for (let layer = 0; layer < model.config.numLayers; layer++) {
      const { q, k, v } = await ctx.recorder.time('compute', `layer ${layer} qkv`, () => model.preAttention(layer, x, positions));
      const window = layerWindow(model.config, layer);
      const cache = new KvCacheShare(model.thread, numKvHeads, headDim, positions.length + reserve, window);
      caches.push(cache);
      await cache.append(k, v, positions);
      const attention = await strategy.run(layerContext(ctx, `p${layer}`), { q, k, v, seq: prompt.length, causal: true, ...(window === undefined ? {} : { window }) });
      x = await ctx.recorder.time('compute', `layer ${layer} mlp`, () => model.postAttention(layer, x, attention.out));
      onLayerDone?.(layer);
    }
    const rows = allLogits ? x : lastRow(x);
    const logits = await ctx.recorder.time('compute', 'lm head', () => model.logits(rows));
    await ctx.recorder.time('compute', 'warm decode graphs', () => warmDecodeGraphs(model, caches));
    return { positions, logits, caches };
  } catch (error) {
    await releaseRankState({ caches });
    throw error;
  }
}

/**
 * One decode step of one generation on one rank (decodeLogits with one row, its partial exchanged when other ranks
 * hold cache shares): returns the logits on the owner, which alone keeps the new token's K/V and runs the lm head.
 */
export async function decodeRank(ctx: RankContext, model: RankModel, state: RankState, step: number, token: number, position: number, owner: number): Promise<Tensor | undefined> {
  const row = { caches: state.caches, token, position, owns: ctx.rank === owner, sharded: ctx.worldSize > 1 };
  const logits = (await decodeLogits(ctx, model, [row], (layer) => `d${step}/${layer}/`)).get(0);
  return logits && { data: logits, shape: [1, model.config.vocabSize] };
}

/**
 * Runs every graph of a decode step once on a dummy token that sees no cache row and writes nothing: ONNX Runtime
 * spends 100-500 ms on the first run of each new input shape (one-row graphs, the attention over the cache), which
 * would otherwise land on the first decode steps. It lands in prefill instead, where every rank pays it at once.
 * (A batch of B sessions runs the attention graph for B: its first step of that size loads it, 10-70 ms for B = 1..16.)
 */
async function warmDecodeGraphs(model: RankModel, caches: readonly KvCacheShare[]): Promise<void> {
  const { hiddenSize, numHeads } = model.config;
  const nowhere = Int32Array.of(-1); // a position before every cache row
  const steps: ChainStep[] = [];
  for (const [layer, cache] of caches.entries()) {
    steps.push(model.preStep(layer, layer === 0 ? { data: new Float32Array(hiddenSize), shape: [1, hiddenSize] } : { output: 'y' }, [0]));
    steps.push(await KvCacheShare.attendEachStep([cache], { output: 'q' }, nowhere, numHeads));
    steps.push(model.postStep(layer, { data: new Float32Array(hiddenSize), shape: [1, hiddenSize] }, { output: 'out' }));
  }
  await model.thread.chain([...steps, model.headStep({ output: 'y' })]);
}

function lastRow(x: Tensor): Tensor {
  const [rows, width] = x.shape as [number, number];
  return { data: x.data.subarray(Math.max(0, rows - 1) * width, rows * width), shape: [Math.min(rows, 1), width] };
}
