import type { PartialAttention, Span, Tensor } from '@seqpar/core';
import { withFrame } from '@seqpar/transport';
import { fetchFrame, floatsOf, postFrame, waitComm } from './frames.js';
import { placeHeads, sliceColumnSpans, sliceHeads } from './head-slices.js';
import type { RankContext } from './rank-context.js';

/**
 * Where the rows of each member of an all-to-all group sit in the sequence the group gathers: spans of gathered
 * rows, in the member's local row order. Ulysses gathers the whole sequence from contiguous shards (one span
 * each); USP gathers its ring group's zigzag rows from zigzag shards (two spans each).
 */
export type RowPlacement = (member: number) => readonly Span[];

/** q, k, v of all gathered rows for one member's share of the heads. k and v share one buffer, K first (a KV frame as is). */
export interface GatheredHeads {
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
}

const rowsOf = (spans: readonly Span[]): number => spans.reduce((sum, span) => sum + span.end - span.start, 0);

/**
 * All-to-all 1 of DeepSpeed-Ulysses within `ctx`'s ranks: "my rows, all heads" becomes "all `gatheredRows` rows,
 * my heads" (member p gets query heads [p·Hq/G, (p+1)·Hq/G) and the KV heads they read). Each member sends every
 * other its rows of that member's heads as one frame [q | k | v].
 */
export async function scatterHeads(ctx: RankContext, own: GatheredHeads, gatheredRows: number, placement: RowPlacement): Promise<GatheredHeads> {
  const { rank, worldSize: g } = ctx;
  const [, hq, d] = own.q.shape as [number, number, number];
  const [hqShare, hkvShare] = [hq / g, own.k.shape[1]! / g];
  const headsOf = (p: number): Float32Array =>
    concat([sliceHeads(own.q, p * hqShare, (p + 1) * hqShare), sliceHeads(own.k, p * hkvShare, (p + 1) * hkvShare), sliceHeads(own.v, p * hkvShare, (p + 1) * hkvShare)]);
  const sends = Array.from({ length: g }, (_, p) => (p === rank ? Promise.resolve() : postFrame(ctx, p, 'heads', {}, headsOf(p))));
  const q = new Float32Array(gatheredRows * hqShare * d);
  const kv = new Float32Array(2 * gatheredRows * hkvShare * d);
  const [k, v] = [kv.subarray(0, kv.length / 2), kv.subarray(kv.length / 2)];
  /** Puts source s's rows (its frame [q | k | v] for this rank's heads) at their places in the gathered sequence. */
  const place = (s: number, packed: Float32Array): void => {
    const spans = placement(s);
    const [qRow, kvRow] = [hqShare * d, hkvShare * d];
    const count = rowsOf(spans);
    const qSize = count * qRow;
    let row = 0;
    for (const { start, end } of spans) {
      const [from, to] = [row, row + end - start];
      q.set(packed.subarray(from * qRow, to * qRow), start * qRow);
      k.set(packed.subarray(qSize + from * kvRow, qSize + to * kvRow), start * kvRow);
      v.set(packed.subarray(qSize + (count + from) * kvRow, qSize + (count + to) * kvRow), start * kvRow);
      row = to;
    }
  };
  for (let s = 0; s < g; s++) {
    if (s === rank) place(s, headsOf(rank));
    else await withFrame(waitComm(ctx, `heads ← ${s}`, fetchFrame(ctx, s, 'heads')), (frame) => place(s, floatsOf(frame.payload)));
  }
  await waitComm(ctx, 'heads sent', Promise.all(sends));
  return { q: { data: q, shape: [gatheredRows, hqShare, d] }, k: { data: k, shape: [gatheredRows, hkvShare, d] }, v: { data: v, shape: [gatheredRows, hkvShare, d] } };
}

/**
 * All-to-all 2, the inverse: `local` holds out [gathered rows, Hq/G, D] and lse [Hq/G, gathered rows] of this
 * member's heads; every member gets back out and lse of its own rows for those heads. Returns this rank's result
 * over its `rows` local rows and all `hq` heads.
 */
export async function gatherHeads(ctx: RankContext, local: PartialAttention, placement: RowPlacement, rows: number, hq: number): Promise<PartialAttention> {
  const { rank, worldSize: g } = ctx;
  const [gatheredRows, hqShare, d] = local.out.shape as [number, number, number];
  const result: PartialAttention = { out: { data: new Float32Array(rows * hq * d), shape: [rows, hq, d] }, lse: { data: new Float32Array(hq * rows), shape: [hq, rows] } };
  const outRow = hqShare * d;
  const packFor = (p: number): Float32Array => {
    const spans = placement(p);
    return concat([...spans.map(({ start, end }) => local.out.data.subarray(start * outRow, end * outRow)), sliceColumnSpans(local.lse.data, hqShare, gatheredRows, spans)]);
  };
  /** Puts source s's heads [s·hN, (s+1)·hN) of out [rows, hN, D] and lse [hN, rows] into this rank's result. */
  const place = (s: number, packed: Float32Array): void => {
    const outSize = rows * outRow;
    placeHeads(result.out, packed.subarray(0, outSize), s * hqShare);
    result.lse.data.set(packed.subarray(outSize, outSize + hqShare * rows), s * hqShare * rows);
  };
  const sends = Array.from({ length: g }, (_, p) => {
    if (p !== rank) return postFrame(ctx, p, 'back', {}, packFor(p));
    place(rank, packFor(rank));
    return Promise.resolve();
  });
  for (let s = 0; s < g; s++) {
    if (s === rank) continue;
    await withFrame(waitComm(ctx, `back ← ${s}`, fetchFrame(ctx, s, 'back')), (frame) => place(s, floatsOf(frame.payload)));
  }
  await waitComm(ctx, 'back sent', Promise.all(sends));
  return result;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
