import { createPartial, partStart, UsageError, type PartialAttention, type Tensor } from '@seqpar/core';
import { withFrame } from '@seqpar/transport';
import { attendSequence } from './attend-sequence.js';
import { fetchFrame, floatsOf, postFrame, waitComm } from './frames.js';
import { placeHeads, sliceColumns, sliceHeads } from './head-slices.js';
import type { RankContext, RankInput } from './rank-context.js';

/** Ulysses keeps the contiguous layout: rank r's tokens are [floor(r·S/N), floor((r+1)·S/N)). */
export const ULYSSES_LAYOUT = 'contiguous';

/** Ulysses splits heads across ranks, so the degree must divide the KV heads (and hence the query heads). */
export function checkUlyssesDegree(hq: number, hkv: number, degree: number): void {
  if (degree > hkv || hkv % degree !== 0 || hq % degree !== 0) {
    throw new UsageError(`ulysses needs the worker count (${degree}) to divide the kv heads (${hkv}) and query heads (${hq}); use fewer workers or another strategy`);
  }
}

/**
 * DeepSpeed-Ulysses (Jacobs et al., 2023): an all-to-all turns "my tokens, all heads" into "all tokens, my heads"
 * (rank p gets query heads [p·Hq/N, (p+1)·Hq/N) and the KV heads they read), each rank runs ordinary attention
 * over the whole sequence for its heads (under the request's mask, so balanced for any documents and window), and a
 * second all-to-all brings out and lse back to the token owners.
 */
export async function ulyssesAttention(ctx: RankContext, input: RankInput): Promise<PartialAttention> {
  const { rank, worldSize: n } = ctx;
  const [rows, hq, d] = input.q.shape as [number, number, number];
  const hkv = input.k.shape[1]!;
  checkUlyssesDegree(hq, hkv, n);
  const [hqShare, hkvShare] = [hq / n, hkv / n];

  // All-to-all 1: to every rank p, this rank's rows of p's heads, as one frame [q | k | v].
  const headsOf = (p: number): Float32Array =>
    concat([sliceHeads(input.q, p * hqShare, (p + 1) * hqShare), sliceHeads(input.k, p * hkvShare, (p + 1) * hkvShare), sliceHeads(input.v, p * hkvShare, (p + 1) * hkvShare)]);
  const sends = Array.from({ length: n }, (_, p) => (p === rank ? Promise.resolve() : postFrame(ctx, p, 'heads', {}, headsOf(p))));
  const qFull = new Float32Array(input.seq * hqShare * d);
  const kFull = new Float32Array(input.seq * hkvShare * d);
  const vFull = new Float32Array(input.seq * hkvShare * d);
  /** Puts source s's rows (its frame [q | k | v] for this rank's heads) at their place in the full sequence. */
  const placeHeadsOf = (s: number, packed: Float32Array): void => {
    const start = partStart(s, n, input.seq);
    const count = partStart(s + 1, n, input.seq) - start;
    const [qSize, kvSize] = [count * hqShare * d, count * hkvShare * d];
    qFull.set(packed.subarray(0, qSize), start * hqShare * d);
    kFull.set(packed.subarray(qSize, qSize + kvSize), start * hkvShare * d);
    vFull.set(packed.subarray(qSize + kvSize, qSize + 2 * kvSize), start * hkvShare * d);
  };
  for (let s = 0; s < n; s++) {
    if (s === rank) placeHeadsOf(s, headsOf(rank));
    else await withFrame(waitComm(ctx, `heads ← ${s}`, fetchFrame(ctx, s, 'heads')), (frame) => placeHeadsOf(s, floatsOf(frame.payload)));
  }
  await waitComm(ctx, 'heads sent', Promise.all(sends));

  const local = createPartial(input.seq, hqShare, d);
  await attendSequence(ctx, local, input, tensorOf(qFull, [input.seq, hqShare, d]), tensorOf(kFull, [input.seq, hkvShare, d]), tensorOf(vFull, [input.seq, hkvShare, d]), 'heads');

  // All-to-all 2: to every rank p, out and lse of p's tokens for this rank's heads.
  const result: PartialAttention = { out: tensorOf(new Float32Array(rows * hq * d), [rows, hq, d]), lse: tensorOf(new Float32Array(hq * rows), [hq, rows]) };
  const returnSends = Array.from({ length: n }, (_, p) => {
    const start = partStart(p, n, input.seq);
    const end = partStart(p + 1, n, input.seq);
    const packed = concat([local.out.data.subarray(start * hqShare * d, end * hqShare * d), sliceColumns(local.lse.data, hqShare, input.seq, start, end)]);
    if (p !== rank) return postFrame(ctx, p, 'back', {}, packed);
    placeResult(result, packed, rank, hqShare);
    return Promise.resolve();
  });
  for (let s = 0; s < n; s++) {
    if (s === rank) continue;
    await withFrame(waitComm(ctx, `back ← ${s}`, fetchFrame(ctx, s, 'back')), (frame) => placeResult(result, floatsOf(frame.payload), s, hqShare));
  }
  await waitComm(ctx, 'back sent', Promise.all(returnSends));
  return result;
}

/** Puts source s's heads [s·hN, (s+1)·hN) of out [rows, hN, D] and lse [hN, rows] into this rank's result. */
function placeResult(result: PartialAttention, packed: Float32Array, source: number, hqShare: number): void {
  const [rows, , d] = result.out.shape as [number, number, number];
  const outSize = rows * hqShare * d;
  placeHeads(result.out, packed.subarray(0, outSize), source * hqShare);
  result.lse.data.set(packed.subarray(outSize, outSize + hqShare * rows), source * hqShare * rows);
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

const tensorOf = (data: Float32Array, shape: number[]): Tensor => ({ data, shape });
