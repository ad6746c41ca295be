import { createPartial, mergeInto, type PartialAttention, type Tensor } from '@seqpar/core';
import { fetchFrame, floatsOf, headerNumber, postFrame, waitComm } from './frames.js';
import { packPartial, unpackPartial } from './partial-frames.js';
import type { RankContext } from './rank-context.js';

/** One rank's share of a sharded KV cache: rows of K and V [P, Hkv, D] and their global token positions. */
export interface KvCacheShare {
  readonly k: Tensor;
  readonly v: Tensor;
  readonly positions: Int32Array;
}

/** New tokens to attend from: queries [T, Hq, D] at global positions, held by `owner`. */
export interface DecodeQuery {
  readonly owner: number;
  readonly q?: Tensor;
  readonly positions?: Int32Array;
}

/**
 * Pass-Q attention over a sharded KV cache (context-parallel inference, Meta 2024): the owner of the new tokens
 * sends their queries to every rank; each rank attends them over its own share of the cache under the causal rule
 * of global positions and sends (out, lse) back; the owner merges. Only queries and partials travel, never KV.
 * Every rank calls this; only the owner passes `q` and gets the merged result (the others get undefined).
 */
export async function passQDecode(ctx: RankContext, query: DecodeQuery, cache: KvCacheShare): Promise<PartialAttention | undefined> {
  const { rank, worldSize: n } = ctx;
  const isOwner = rank === query.owner;
  let q: Tensor;
  let positions: Int32Array;
  if (isOwner) {
    if (!query.q || !query.positions) throw new TypeError('the owner passes the queries and their positions');
    q = query.q;
    positions = query.positions;
    const payload = concatQueries(q.data, positions);
    await waitComm(ctx, 'q sent', Promise.all(peers(rank, n).map((p) => postFrame(ctx, p, 'dq', { rows: q.shape[0], heads: q.shape[1], dim: q.shape[2] }, payload))));
  } else {
    const frame = await waitComm(ctx, 'q', fetchFrame(ctx, query.owner, 'dq'));
    const [rows, heads, dim] = ['rows', 'heads', 'dim'].map((key) => headerNumber(frame, key)) as [number, number, number];
    const floats = floatsOf(frame.payload);
    q = { data: floats.subarray(0, rows * heads * dim), shape: [rows, heads, dim] };
    positions = new Int32Array(floats.buffer, floats.byteOffset + rows * heads * dim * 4, rows);
  }
  const local = await attendShare(ctx, q, positions, cache);
  if (!isOwner) {
    await waitComm(ctx, 'partial sent', postFrame(ctx, query.owner, 'dpart', { rows: q.shape[0] }, packPartial(local)));
    return undefined;
  }
  for (const p of peers(rank, n)) {
    const frame = await waitComm(ctx, `partial ← ${p}`, fetchFrame(ctx, p, 'dpart'));
    const partial = unpackPartial(floatsOf(frame.payload), headerNumber(frame, 'rows'), q.shape[1]!, q.shape[2]!);
    await ctx.recorder.time('compute', 'merge', () => mergeInto(local, partial));
  }
  return local;
}

/**
 * The other half of decoding when every rank already holds the new queries (the model's decode step computes a
 * token's token-local layers on every rank, so no query has to travel): each rank's (out, lse) over its own share
 * goes to every other rank, and every rank merges all of them in rank order, so all hold the same bits. One
 * exchange per layer instead of pass-Q's two (queries out, partials back).
 */
export async function gatherDecodePartials(ctx: RankContext, local: PartialAttention): Promise<PartialAttention> {
  const { rank, worldSize: n } = ctx;
  if (n === 1) return local;
  const [rows, heads, dim] = local.out.shape as [number, number, number];
  const packed = packPartial(local);
  const sent = Promise.all(peers(rank, n).map((p) => postFrame(ctx, p, 'dpart', { rows }, packed)));
  sent.catch(() => undefined); // awaited below; a failed receive (abort, lost peer) must not leave it unhandled meanwhile
  const partials = await Promise.all(
    Array.from({ length: n }, (_, p) =>
      p === rank ? local : waitComm(ctx, `partial ← ${p}`, fetchFrame(ctx, p, 'dpart')).then((frame) => unpackPartial(floatsOf(frame.payload), headerNumber(frame, 'rows'), heads, dim)),
    ),
  );
  await waitComm(ctx, 'partial sent', sent);
  return ctx.recorder.time('compute', 'merge', () => {
    const merged = createPartial(rows, heads, dim);
    for (const partial of partials) mergeInto(merged, partial);
    return merged;
  });
}

async function attendShare(ctx: RankContext, q: Tensor, positions: Int32Array, cache: KvCacheShare): Promise<PartialAttention> {
  if (cache.positions.length === 0) return createPartial(q.shape[0]!, q.shape[1]!, q.shape[2]!);
  return ctx.recorder.time('compute', 'attend cache share', () => ctx.kernel.attend(q, cache.k, cache.v, { kind: 'positions', queryPositions: positions, keyPositions: cache.positions }));
}

/** Queries then their int32 positions, in one float32-sized frame. */
function concatQueries(q: Float32Array, positions: Int32Array): Float32Array {
  const payload = new Float32Array(q.length + positions.length);
  payload.set(q, 0);
  new Int32Array(payload.buffer, q.length * 4, positions.length).set(positions);
  return payload;
}

const peers = (rank: number, n: number): number[] => Array.from({ length: n }, (_, p) => p).filter((p) => p !== rank);
