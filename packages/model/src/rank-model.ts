import type { Tensor } from '@seqpar/core';
import { rowsWithin, runInRowTiles, type ComputeThread, type RunStep, type OutputFeed, type WireTensor } from '@seqpar/kernels';
import type { ModelConfig } from './config.js';
import { buildHeadGraph, buildPostAttentionGraph, buildPreAttentionGraph, ropeTables } from './layer-graphs.js';
import type { ModelWeights } from './weights.js';

export interface QKV {
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
}

/** A model's token-local graphs loaded on one rank's compute thread, plus the embedding lookup (plain JS). */
export class RankModel {
  /** Rows per run of the token-local graphs (a prompt share runs in tiles of this many). */
  readonly tileRows: number;

  private constructor(
    readonly config: ModelConfig,
    private readonly weights: ModelWeights,
    readonly thread: ComputeThread,
    private readonly keyPrefix: string,
  ) {
    this.tileRows = rowsWithin(layerBytesPerRow(config));
  }

  /**
   * Loads every layer's graphs on `thread`. The thread keeps graphs by `modelKey`: a key already loaded there is
   * reused as is, so it must name these very weights (model-cache.ts keys each load of a model anew).
   */
  static async load(config: ModelConfig, weights: ModelWeights, thread: ComputeThread, modelKey: string): Promise<RankModel> {
    const model = new RankModel(config, weights, thread, modelKey);
    // No arena per graph: two graphs a layer, each arena kept at its largest run, would add up over the layers.
    await Promise.all(model.graphs().map(([key, build]) => thread.load(key, build, { arena: false, pattern: false })));
    return model;
  }

  /** Releases this model's graphs on its thread; running it afterwards fails. */
  async unload(): Promise<void> {
    await Promise.all(this.graphs().map(([key]) => this.thread.unload(key)));
  }

  private graphs(): Array<[key: string, build: () => Uint8Array]> {
    const { config, weights } = this;
    return [
      ...weights.layers.flatMap((layer, i): Array<[string, () => Uint8Array]> => [
        [this.key('pre', i), () => buildPreAttentionGraph(config, layer)],
        [this.key('post', i), () => buildPostAttentionGraph(config, layer)],
      ]),
      [this.key('head'), () => buildHeadGraph(config, weights)],
    ];
  }

  /** Rows of the embedding matrix for `ids`: x [t, H]. */
  embed(ids: ArrayLike<number>): Tensor {
    const h = this.config.hiddenSize;
    const data = new Float32Array(ids.length * h);
    for (let t = 0; t < ids.length; t++) data.set(this.weights.embedTokens.data.subarray(ids[t]! * h, (ids[t]! + 1) * h), t * h);
    return { data, shape: [ids.length, h] };
  }

  async preAttention(layer: number, x: Tensor, positions: ArrayLike<number>): Promise<QKV> {
    const { headDim, numHeads, numKvHeads } = this.config;
    const t = x.shape[0]!;
    if (t === 0) return { q: empty([0, numHeads, headDim]), k: empty([0, numKvHeads, headDim]), v: empty([0, numKvHeads, headDim]) };
    const out = await this.runTiled(this.preStep(layer, x, positions));
    return {
      q: { data: out['q']!, shape: [t, numHeads, headDim] },
      k: { data: out['k']!, shape: [t, numKvHeads, headDim] },
      v: { data: out['v']!, shape: [t, numKvHeads, headDim] },
    };
  }

  async postAttention(layer: number, x: Tensor, attention: Tensor): Promise<Tensor> {
    if (x.shape[0] === 0) return x;
    const out = await this.runTiled(this.postStep(layer, x, attention));
    return { data: out['y']!, shape: x.shape };
  }

  async logits(x: Tensor): Promise<Tensor> {
    if (x.shape[0] === 0) return empty([0, this.config.vocabSize]);
    const out = await this.runTiled(this.headStep(x));
    return { data: out['logits']!, shape: [x.shape[0]!, this.config.vocabSize] };
  }

  /**
   * The pre-attention graph as a chain step: x [t, H] (or an earlier step's output) at global `positions` ->
   * outputs q, k, v. The steps let a decode step run several graphs in one round trip to the thread.
   */
  preStep(layer: number, x: Tensor | OutputFeed, positions: ArrayLike<number>): RunStep {
    const { headDim, ropeTheta } = this.config;
    const { cos, sin } = ropeTables(positions, headDim, ropeTheta);
    const dims = [positions.length, headDim];
    return { run: this.key('pre', layer), feeds: { x: feed(x), cos: { type: 'float32', data: cos, dims }, sin: { type: 'float32', data: sin, dims } } };
  }

  /** The post-attention graph as a chain step: x [t, H] and attention [t, Hq, Dh] -> output y [t, H]. */
  postStep(layer: number, x: Tensor | OutputFeed, attention: Tensor | OutputFeed): RunStep {
    return { run: this.key('post', layer), feeds: { x: feed(x), attn: feed(attention) } };
  }

  /** The final norm and lm_head as a chain step: x [t, H] -> output logits [t, V]. */
  headStep(x: Tensor | OutputFeed): RunStep {
    return { run: this.key('head'), feeds: { x: feed(x) } };
  }

  /** Runs a token-local graph on sent rows in row tiles, so its working memory stays within the thread's budget. */
  private runTiled(step: RunStep): Promise<Record<string, Float32Array>> {
    return runInRowTiles(this.thread, step.run, step.feeds as Record<string, WireTensor>, this.tileRows);
  }

  private key(part: string, layer?: number): string {
    return `${this.keyPrefix}:${part}${layer === undefined ? '' : `:${layer}`}`;
  }
}

/**
 * Working memory per token of the largest token-local graph, an upper bound: ORT plans a graph's intermediates
 * at once, so it holds a few [t, width] tensors of each width (post-attention: the SwiGLU's gate, up and their
 * products; pre-attention: the projections and their RoPE; the head: the logits).
 */
function layerBytesPerRow({ hiddenSize, intermediateSize, numHeads, numKvHeads, headDim, vocabSize }: ModelConfig): number {
  return 4 * Math.max(6 * hiddenSize + 5 * intermediateSize, 4 * hiddenSize + 6 * (numHeads + 2 * numKvHeads) * headDim, 3 * hiddenSize + 2 * vocabSize);
}

const feed = (x: Tensor | OutputFeed) => ('output' in x ? x : { type: 'float32' as const, data: x.data, dims: x.shape });

/** A rank with no tokens (S < N) skips its graphs: ONNX Runtime is never asked to run zero rows. */
const empty = (shape: number[]): Tensor => ({ data: new Float32Array(0), shape });
