import { createPartial, gatherPartialRows, scatterPartialRows, type Tensor } from '@seqpar/core';
import { laneFits, type ChainStep, type OutputFeed } from '@seqpar/kernels';
import { gatherDecodePartials, laneExchanges, type RankContext } from '@seqpar/strategies';
import { KvCacheShare } from './kv-cache.js';
import type { RankModel } from './rank-model.js';
import type { RankSession } from './rank-session.js';

/** One row of a decode step: a session this rank takes part in, the token it last sampled and that token's position. */
export interface DecodeRow {
  readonly session: RankSession;
  readonly token: number;
  readonly position: number;
}

/** One row of a decode step as its layers see it. */
export interface DecodeLayerRow {
  /** This rank's share of the row's KV cache, one per layer. */
  readonly caches: readonly KvCacheShare[];
  readonly token: number;
  readonly position: number;
  /** This rank keeps the row's new K/V and gets its logits. */
  readonly owns: boolean;
  /** The row's partial (out, lse) is merged with the other ranks' (its cache is spread over them). */
  readonly sharded: boolean;
}

/**
 * One decode step of every session this rank takes part in, as one batch of rows (continuous batching), then
 * each row's sampling draw; returns the sampled token of each row this rank owns (undefined elsewhere). Sharded
 * sessions span all of `ctx`'s ranks and come in the same order on every rank, so the exchange lines up.
 */
export async function decodeRows(ctx: RankContext, rows: readonly DecodeRow[]): Promise<(number | undefined)[]> {
  if (rows.length === 0) return [];
  const layerRows = rows.map(({ session, token, position }) => ({
    caches: session.state.caches,
    token,
    position,
    owns: session.ownerOf(position) === session.rank,
    sharded: session.degree > 1,
  }));
  const logits = await decodeLogits(ctx, rows[0]!.session.model, layerRows, (layer) => `d${layer}/`);
  return rows.map((row, i) => row.session.next(logits.get(i)));
}

/**
 * The layers of one decode step over a batch of rows on one rank. Every rank runs the rows' token-local layers
 * itself (they are tiny for a few tokens, and every rank holds the weights), so the queries never travel. Per
 * layer the compute thread runs the previous layer's post-attention and this layer's pre-attention graphs over all
 * rows (each at its own position), each row's cache append (on its owner) and its attention over its own cache
 * share. The lm head runs only on the rows this rank owns. Returns their logits by row index. `tagOf` names a
 * layer's exchange under `ctx`'s tag prefix.
 *
 * The whole step is ONE chain on the compute thread: each hop between this thread and the compute thread waits
 * for a wake-up, and where threads outnumber cores (2 cores, a coordinator and two threads per worker) a wake-up
 * took 0.2-3 ms, more than a layer's compute. Sharded rows' partials are exchanged inside the chain, one exchange
 * per layer carrying every sharded row, through the transport's decode lanes (strategies decode-lanes.ts). Where
 * there are none (ws, inproc), decodeLayerByLayer.
 */
export async function decodeLogits(ctx: RankContext, model: RankModel, rows: readonly DecodeLayerRow[], tagOf: (layer: number) => string): Promise<Map<number, Float32Array>> {
  const { numLayers, numHeads, headDim } = model.config;
  const positions = Int32Array.from(rows, (row) => row.position);
  const sharded = rows.flatMap((row, i) => (row.sharded ? [i] : []));
  using lanes = sharded.length > 0 && laneFits(sharded.length, numHeads, headDim) ? laneExchanges(ctx) : undefined;
  if (sharded.length > 0 && !lanes) return decodeLayerByLayer(ctx, model, rows, positions, sharded, tagOf);
  let x: Tensor | OutputFeed = model.embed(rows.map((row) => row.token)); // the current layer's input
  let attended: Tensor | OutputFeed | undefined; // the previous layer's merged attention output
  const steps: ChainStep[] = [];
  for (let layer = 0; layer < numLayers; layer++) {
    steps.push(...(await layerSteps(model, layer, rows, positions, x, attended)));
    if (lanes) steps.push(lanes.step(tagOf(layer), sharded));
    if (attended) x = { output: 'y' };
    attended = { output: 'out' };
  }
  const outputs = await ctx.recorder.time('compute', 'decode step', () => model.thread.chain([...steps, ...headSteps(model, rows, x, attended!)]));
  return logitsOf(model, rows, outputs);
}

/**
 * decodeLogits where the transport has no decode lanes: every layer is one chain, then ONE exchange of partials on
 * this thread carries every sharded row, merged per row in rank order.
 */
async function decodeLayerByLayer(
  ctx: RankContext,
  model: RankModel,
  rows: readonly DecodeLayerRow[],
  positions: Int32Array,
  sharded: readonly number[],
  tagOf: (layer: number) => string,
): Promise<Map<number, Float32Array>> {
  const { numLayers, numHeads, headDim } = model.config;
  let x: Tensor | OutputFeed = model.embed(rows.map((row) => row.token));
  let attended: Tensor | OutputFeed | undefined;
  // The sharded rows' partial of each layer in turn (the exchange has sent it before the next layer refills it).
  const local = createPartial(sharded.length, numHeads, headDim);
  for (let layer = 0; layer < numLayers; layer++) {
    const steps = await layerSteps(model, layer, rows, positions, x, attended);
    const outputs = await ctx.recorder.time('compute', `layer ${layer} decode`, () => model.thread.chain(steps));
    if (attended) x = { data: outputs['y']!, shape: [rows.length, model.config.hiddenSize] };
    const [out, lse] = [outputs['out']!, outputs['lse']!]; // [B, Hq, Dh] and [Hq, B]
    gatherPartialRows(out, lse, sharded, local);
    scatterPartialRows(await gatherDecodePartials({ ...ctx, tagPrefix: `${ctx.tagPrefix}${tagOf(layer)}` }, local), sharded, out);
    attended = { data: out, shape: [rows.length, numHeads, headDim] };
  }
  const last = headSteps(model, rows, x, attended!);
  const outputs = last.length === 0 ? {} : await ctx.recorder.time('compute', 'lm head', () => model.thread.chain(last));
  return logitsOf(model, rows, outputs);
}

/**
 * One layer's chain steps over the rows: the previous layer's post-attention (given its attention output
 * `attended`; its output y is this layer's input), this layer's pre-attention on `x` (or that y), each row's cache
 * append (on its owner), then ONE run of every row's attention over its own share: outputs out [B, Hq, Dh] and
 * lse [Hq, B] (a run per row cost each row a run's fixed overhead, and its q row sliced out).
 */
async function layerSteps(
  model: RankModel,
  layer: number,
  rows: readonly DecodeLayerRow[],
  positions: Int32Array,
  x: Tensor | OutputFeed,
  attended: Tensor | OutputFeed | undefined,
): Promise<ChainStep[]> {
  const steps: ChainStep[] = [];
  if (attended) steps.push(model.postStep(layer - 1, x, attended));
  steps.push(model.preStep(layer, attended ? { output: 'y' } : x, positions));
  for (const [i, row] of rows.entries()) {
    const own = [i, i + 1] as const;
    if (row.owns) steps.push(...row.caches[layer]!.appendSteps({ output: 'k', rows: own }, { output: 'v', rows: own }, [row.position]));
  }
  steps.push(
    await KvCacheShare.attendEachStep(
      rows.map((row) => row.caches[layer]!),
      { output: 'q' },
      positions,
      model.config.numHeads,
    ),
  );
  return steps;
}

/** The last layer's post-attention, then the lm head once per contiguous run of owned rows (outputs logits<first row>). */
function headSteps(model: RankModel, rows: readonly DecodeLayerRow[], x: Tensor | OutputFeed, attended: Tensor | OutputFeed): ChainStep[] {
  const heads = ownedRuns(rows).map(([from, to]) => ({ ...model.headStep({ output: 'y', rows: [from, to] }), outputs: { logits: `logits${from}` } }));
  return heads.length === 0 ? [] : [model.postStep(model.config.numLayers - 1, x, attended), ...heads];
}

/** The logits of every owned row, by row index, from the head steps' outputs. */
function logitsOf(model: RankModel, rows: readonly DecodeLayerRow[], outputs: Record<string, Float32Array>): Map<number, Float32Array> {
  const vocab = model.config.vocabSize;
  const logits = new Map<number, Float32Array>();
  for (const [from, to] of ownedRuns(rows)) {
    const run = outputs[`logits${from}`]!;
    for (let row = from; row < to; row++) logits.set(row, run.subarray((row - from) * vocab, (row - from + 1) * vocab));
  }
  return logits;
}

/** Runs [from, to) of consecutive rows this rank owns: a rank never pays the lm head for rows another rank samples. */
function ownedRuns(rows: readonly DecodeLayerRow[]): [number, number][] {
  const runs: [number, number][] = [];
  rows.forEach((row, i) => {
    if (!row.owns) return;
    const last = runs.at(-1);
    if (last && last[1] === i) last[1] = i + 1;
    else runs.push([i, i + 1]);
  });
  return runs;
}
