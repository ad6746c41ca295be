import type { Tensor } from '@seqpar/core';
import type { ChainStep } from '@seqpar/kernels';
import { gatherDecodePartials, type RankContext } from '@seqpar/strategies';
import type { KvCacheShare } from './kv-cache.js';
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
 * itself (they are tiny for a few tokens, and every rank holds the weights), so the queries never travel: per
 * layer ONE chain on the compute thread runs the previous layer's post-attention and this layer's pre-attention
 * graphs over all rows (each at its own position), each row's cache append (on its owner) and its attention over
 * its own cache share; then ONE exchange of partials carries every sharded row, merged per row in rank order. The
 * lm head runs only on the rows this rank owns. Returns their logits by row index. `tagOf` names a layer's
 * exchange under `ctx`'s tag prefix.
 */
export async function decodeLogits(ctx: RankContext, model: RankModel, rows: readonly DecodeLayerRow[], tagOf: (layer: number) => string): Promise<Map<number, Float32Array>> {
  const { numLayers, numHeads, headDim, vocabSize } = model.config;
  const count = rows.length;
  const positions = Int32Array.from(rows, (row) => row.position);
  const sharded = rows.flatMap((row, i) => (row.sharded ? [i] : []));
  const rowSize = numHeads * headDim;
  let x: Tensor = model.embed(rows.map((row) => row.token)); // the current layer's input
  let attended: Tensor | undefined; // the previous layer's merged attention output
  for (let layer = 0; layer < numLayers; layer++) {
    const steps: ChainStep[] = [];
    if (attended) steps.push(model.postStep(layer - 1, x, attended));
    steps.push(model.preStep(layer, attended ? { output: 'y' } : x, positions));
    for (const [i, row] of rows.entries()) {
      const cache = row.caches[layer]!;
      const own = [i, i + 1] as const;
      if (row.owns) steps.push(...cache.appendSteps({ output: 'k', rows: own }, { output: 'v', rows: own }, [row.position]));
      steps.push({ ...(await cache.attendStep({ output: 'q', rows: own }, positions.subarray(i, i + 1), numHeads)), outputs: { out: `out${i}`, lse: `lse${i}` } });
    }
    const outputs = await ctx.recorder.time('compute', `layer ${layer} decode`, () => model.thread.chain(steps));
    if (attended) x = { data: outputs['y']!, shape: x.shape };
    const out = new Float32Array(count * rowSize);
    rows.forEach((_, i) => out.set(outputs[`out${i}`]!, i * rowSize));
    if (sharded.length > 0) {
      const local = {
        out: { data: new Float32Array(sharded.length * rowSize), shape: [sharded.length, numHeads, headDim] },
        lse: { data: new Float32Array(numHeads * sharded.length), shape: [numHeads, sharded.length] },
      };
      sharded.forEach((i, j) => {
        local.out.data.set(outputs[`out${i}`]!, j * rowSize);
        const lse = outputs[`lse${i}`]!;
        for (let h = 0; h < numHeads; h++) local.lse.data[h * sharded.length + j] = lse[h]!;
      });
      const merged = await gatherDecodePartials({ ...ctx, tagPrefix: `${ctx.tagPrefix}${tagOf(layer)}` }, local);
      sharded.forEach((i, j) => out.set(merged.out.data.subarray(j * rowSize, (j + 1) * rowSize), i * rowSize));
    }
    attended = { data: out, shape: [count, numHeads, headDim] };
  }
  const owned = rows.flatMap((row, i) => (row.owns ? [i] : []));
  if (owned.length === 0) return new Map();
  // One head run per contiguous run of owned rows: a rank never pays the lm head for rows another rank samples.
  const starts: number[] = [];
  for (const [j, i] of owned.entries()) if (j === 0 || owned[j - 1] !== i - 1) starts.push(i);
  const heads = starts.map((from) => {
    let to = from + 1;
    while (owned.includes(to)) to++;
    return { ...model.headStep({ output: 'y', rows: [from, to] }), outputs: { logits: `logits${from}` } };
  });
  const outputs = await ctx.recorder.time('compute', 'lm head', () => model.thread.chain([model.postStep(numLayers - 1, x, attended!), ...heads]));
  const logits = new Map<number, Float32Array>();
  for (const from of starts) {
    const run = outputs[`logits${from}`]!;
    for (let row = 0; row * vocabSize < run.length; row++) logits.set(from + row, run.subarray(row * vocabSize, (row + 1) * vocabSize));
  }
  return logits;
}
