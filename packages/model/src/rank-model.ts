import type { Tensor } from '@seqpar/core';
import type { ChainStep, ComputeThread, OutputFeed } from '@seqpar/kernels';
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
  private constructor(
    readonly config: ModelConfig,
    private readonly weights: ModelWeights,
    readonly thread: ComputeThread,
    private readonly keyPrefix: string,
  ) {}

  /**
   * Loads every layer's graphs on `thread`. The thread keeps graphs by `modelKey`: a key already loaded there is
   * reused as is, so it must name these very weights (model-cache.ts keys each load of a model anew).
   */
  static async load(config: ModelConfig, weights: ModelWeights, thread: ComputeThread, modelKey: string): Promise<RankModel> {
    const model = new RankModel(config, weights, thread, modelKey);
    await Promise.all(model.graphs().map(([key, build]) => thread.load(key, build)));
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
    const out = await this.byRows(t, (from, to) =>
      this.preStep(
        layer,
        rowsOf(x, from, to),
        Array.from({ length: to - from }, (_, i) => positions[from + i]!),
      ),
    );
    return {
      q: { data: out['q']!, shape: [t, numHeads, headDim] },
      k: { data: out['k']!, shape: [t, numKvHeads, headDim] },
      v: { data: out['v']!, shape: [t, numKvHeads, headDim] },
    };
  }

  async postAttention(layer: number, x: Tensor, attention: Tensor): Promise<Tensor> {
    if (x.shape[0] === 0) return x;
    const out = await this.byRows(x.shape[0]!, (from, to) => this.postStep(layer, rowsOf(x, from, to), rowsOf(attention, from, to)));
    return { data: out['y']!, shape: x.shape };
  }

  async logits(x: Tensor): Promise<Tensor> {
    if (x.shape[0] === 0) return empty([0, this.config.vocabSize]);
    const out = await this.byRows(x.shape[0]!, (from, to) => this.headStep(rowsOf(x, from, to)));
    return { data: out['logits']!, shape: [x.shape[0]!, this.config.vocabSize] };
  }

  /**
   * The pre-attention graph as a chain step: x [t, H] (or an earlier step's output) at global `positions` ->
   * outputs q, k, v. The steps let a decode step run several graphs in one round trip to the thread.
   */
  preStep(layer: number, x: Tensor | OutputFeed, positions: ArrayLike<number>): ChainStep {
    const { headDim, ropeTheta } = this.config;
    const { cos, sin } = ropeTables(positions, headDim, ropeTheta);
    const dims = [positions.length, headDim];
    return { run: this.key('pre', layer), feeds: { x: feed(x), cos: { type: 'float32', data: cos, dims }, sin: { type: 'float32', data: sin, dims } } };
  }

  /** The post-attention graph as a chain step: x [t, H] and attention [t, Hq, Dh] -> output y [t, H]. */
  postStep(layer: number, x: Tensor | OutputFeed, attention: Tensor | OutputFeed): ChainStep {
    return { run: this.key('post', layer), feeds: { x: feed(x), attn: feed(attention) } };
  }

  /** The final norm and lm_head as a chain step: x [t, H] -> output logits [t, V]. */
  headStep(x: Tensor | OutputFeed): ChainStep {
    return { run: this.key('head'), feeds: { x: feed(x) } };
  }

  /**
   * Runs a token-local graph over `t` rows as calls of at most PIECE_ROWS rows each (the rows are independent), all
   * sent at once, and joins each output's rows in order. A compute thread runs one call to its end before it looks
   * at what else waits, so the size of a call bounds how long a long prompt's prefill holds back a decode step or a
   * short prompt's prefill.
   */
  private async byRows(t: number, step: (from: number, to: number) => ChainStep): Promise<Record<string, Float32Array>> {
    if (t <= PIECE_ROWS) return this.thread.chain([step(0, t)]);
    const pieces = await Promise.all(Array.from({ length: Math.ceil(t / PIECE_ROWS) }, (_, i) => this.thread.chain([step(i * PIECE_ROWS, Math.min(t, (i + 1) * PIECE_ROWS))])));
    return Object.fromEntries(
      Object.keys(pieces[0]!).map((name) => {
        const joined = new Float32Array(pieces.reduce((sum, piece) => sum + piece[name]!.length, 0));
        let at = 0;
        for (const piece of pieces) {
          joined.set(piece[name]!, at);
          at += piece[name]!.length;
        }
        return [name, joined];
      }),
    );
  }

  private key(part: string, layer?: number): string {
    return `${this.keyPrefix}:${part}${layer === undefined ? '' : `:${layer}`}`;
  }
}

/**
 * Rows per call of a token-local graph (a prefill's share of a long prompt). On the serve bench's model (hidden
 * 256, intermediate 512) a post-attention call takes 50-90 ms at 2048 rows on this 2-core host, 0.3-0.6 s at the
 * 16k rows a worker holds of a 32k prompt; the pre-attention call about half that.
 */
export const PIECE_ROWS = 2048;

/** Rows [from, to) of x [t, ...]. */
function rowsOf(x: Tensor, from: number, to: number): Tensor {
  const width = x.data.length / Math.max(1, x.shape[0]!);
  return from === 0 && to === x.shape[0] ? x : { data: x.data.subarray(from * width, to * width), shape: [to - from, ...x.shape.slice(1)] };
}

const feed = (x: Tensor | OutputFeed) => ('output' in x ? x : { type: 'float32' as const, data: x.data, dims: x.shape });

/** A rank with no tokens (S < N) skips its graphs: ONNX Runtime is never asked to run zero rows. */
const empty = (shape: number[]): Tensor => ({ data: new Float32Array(0), shape });
