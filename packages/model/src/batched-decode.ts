import type { Tensor } from '@seqpar/core';
import type { ChainStep } from '@seqpar/kernels';
import { gatherDecodePartials, type RankContext } from '@seqpar/strategies';
import type { RankSession } from './rank-session.js';

/** One row of a decode step: a session this rank takes part in, the token it last sampled and that token's position. */
export interface DecodeRow {
  readonly session: RankSession;
  readonly token: number;
  readonly position: number;
}

/**
 * One decode step of every session this rank takes part in, as one batch of rows (continuous batching). Per
 * layer one chain on the compute thread runs the token-local graphs over all B rows (each row at its own
 * position), each session's cache append (on the row's owner) and its attention over its own cache share (its
 * row of q); then ONE exchange of partials carries every sharded session's rows, merged per row in rank order.
 * Sharded sessions span all of `ctx`'s ranks and come in the same order on every rank, so the exchange lines up.
 * The math per row is decodeRank's. Returns the sampled token of each row this rank owns (undefined elsewhere);
 * every rank of a session draws its number either way.
 */
export async function decodeRows(ctx: RankContext, rows: readonly DecodeRow[]): Promise<(number | undefined)[]> {
  if (rows.length === 0) return [];
  const model = rows[0]!.session.model;
  const { numLayers, numHeads, headDim, vocabSize } = model.config;
  const count = rows.length;
  const positions = Int32Array.from(rows, (row) => row.position);
  const owns = rows.map((row) => row.session.ownerOf(row.position) === row.session.rank);
  const sharded = rows.flatMap((row, i) => (row.session.degree > 1 ? [i] : []));
  const rowSize = numHeads * headDim;
  let x: Tensor = model.embed(rows.map((row) => row.token));
  let attended: Tensor | undefined;
  for (let layer = 0; layer < numLayers; layer++) {
    const steps: ChainStep[] = [];
    if (attended) steps.push(model.postStep(layer - 1, x, attended));
    steps.push(model.preStep(layer, attended ? { output: 'y' } : x, positions));
    for (const [i, row] of rows.entries()) {
      const cache = row.session.state.caches[layer]!;
      const own = [i, i + 1] as const;
      if (owns[i]) steps.push(...cache.appendSteps({ output: 'k', rows: own }, { output: 'v', rows: own }, [row.position]));
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
      const merged = await gatherDecodePartials({ ...ctx, tagPrefix: `${ctx.tagPrefix}d${layer}/` }, local);
      sharded.forEach((i, j) => out.set(merged.out.data.subarray(j * rowSize, (j + 1) * rowSize), i * rowSize));
    }
    attended = { data: out, shape: [count, numHeads, headDim] };
  }
  const head = await ctx.recorder.time('compute', 'lm head', () => model.thread.chain([model.postStep(numLayers - 1, x, attended!), model.headStep({ output: 'y' })]));
  const logits = head['logits']!;
  return rows.map((row, i) => row.session.next(owns[i] ? logits.subarray(i * vocabSize, (i + 1) * vocabSize) : undefined));
}
