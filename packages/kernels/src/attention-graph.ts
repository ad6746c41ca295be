import { MASKED_SCORE, type MaskKind } from '@seqpar/core';
import { GraphBuilder } from './graph-builder.js';

export interface AttentionGraphShape {
  readonly sq: number;
  readonly sk: number;
  readonly hq: number;
  readonly hkv: number;
  readonly d: number;
  readonly mask: MaskKind;
  /** The 'band' mask's limits on j - i. */
  readonly band?: { readonly min: number; readonly max: number };
}

/** Query rows per tile; measured here: 256-row tiles of one head beat untiled by ~20-30% at S = 2k-4k. */
const TILE_ROWS = 256;
/** Caps the number of tiles (and so graph size and session-creation time) for very long blocks. */
const MAX_TILES = 512;
/** Blocks smaller than this many scores per head run as one batched matmul: tiling would only add op overhead. */
const TILING_THRESHOLD = 256 * 256;
/**
 * Blocks of up to ROW_TILED_ROWS query rows and ROW_TILED_KEYS keys (the strategies' masked pieces: 512-row causal
 * diagonals, and window strips of 512 rows by up to 512 + W keys) run in tiles of ROW_TILE query rows with every
 * head batched in each: a causal tile's keys stop at its last row and a band tile's span its reach, so only thin
 * diagonal strips are computed in vain, and the few large ops cost less than one op chain per head (512 x 512
 * causal, 8 heads: 5.5 ms against 6.9 for per-head 256-row tiles).
 */
const ROW_TILED_ROWS = 512;
const ROW_TILED_KEYS = 2048;
export const ROW_TILE = 64;

/**
 * Block attention with its log-sum-exp, as one ONNX graph:
 *   inputs  q [Sq, Hq, D], k and v [Sk, Hkv, D] (+ q_pos [Sq], k_pos [Sk] int32 for the positions mask)
 *   outputs out [Sq, Hq, D] and lse [Hq, Sq]
 * The scale goes on q (Sq·Hq·D multiplies, not Sq·Sk·Hq). Masked scores get -1e30 added (not -Infinity) so the max
 * stays finite; a row with no visible key ends with lse ≈ -1e30 and out 0. Blocks up to 512 x 2048 run in 64-row
 * tiles of every head at once; larger blocks are cut into tiles of one query head by up to 256 query rows, each its
 * own chain of ops, so a tile's scores stay in cache across the max / exp / sum passes instead of streaming a
 * [H, Sq, Sk] tensor through memory five times.
 */
export function buildAttentionGraph(shape: AttentionGraphShape): Uint8Array {
  const { sq, sk, hq, hkv, d } = shape;
  const g = new GraphBuilder(`attention_${shape.mask}`);
  emitAttention(g, shape, g.input('q', 'float', [sq, hq, d]), g.input('k', 'float', [sk, hkv, d]), g.input('v', 'float', [sk, hkv, d]), { out: 'out', lse: 'lse' });
  g.output('out', 'float', [sq, hq, d]);
  g.output('lse', 'float', [hq, sq]);
  return g.toModelBytes();
}

/**
 * The exact graph's ops on q [Sq, Hq, D], k and v [Sk, Hkv, D] already in `g`: returns out [Sq, Hq, D] and
 * lse [Hq, Sq] (named `names` when given).
 */
export function emitAttention(
  g: GraphBuilder,
  shape: AttentionGraphShape,
  q: string,
  k: string,
  v: string,
  names: { out?: string; lse?: string } = {},
): { out: string; lse: string } {
  const { sq, sk, hq, d } = shape;
  const qHeads = g.op('Transpose', [g.op('Mul', [q, g.scalar(1 / Math.sqrt(d))])], { perm: [1, 0, 2] }); // [Hq, Sq, D]
  const kT = g.op('Transpose', [k], { perm: [1, 2, 0] }); // [Hkv, D, Sk]
  const vHeads = g.op('Transpose', [v], { perm: [1, 0, 2] }); // [Hkv, Sk, D]
  const bias = shape.mask === 'none' ? undefined : maskBias(g, shape); // [Sq, Sk]: 0 visible, -1e30 hidden

  const [out, lse] = isRowTiled(shape)
    ? rowTiled(g, shape, qHeads, kT, vHeads, bias)
    : sq * sk <= TILING_THRESHOLD
      ? batched(g, shape, qHeads, kT, vHeads, bias)
      : tiled(g, shape, qHeads, kT, vHeads, bias);
  return {
    out: g.op('Transpose', [out], { perm: [1, 0, 2] }, { ...(names.out ? { outputName: names.out } : {}) }), // [Hq, Sq, D] -> [Sq, Hq, D]
    lse: g.op('Reshape', [lse, g.ints([hq, sq])], {}, { ...(names.lse ? { outputName: names.lse } : {}) }),
  };
}

/**
 * Whether the exact graph runs `shape` in ROW_TILE-row tiles of every head: its scores then live one tile at a
 * time (attention-session-bytes.ts), not the whole block's.
 */
export function isRowTiled({ sq, sk }: Pick<AttentionGraphShape, 'sq' | 'sk'>): boolean {
  return sq * sk > TILING_THRESHOLD && sq <= ROW_TILED_ROWS && sk <= ROW_TILED_KEYS;
}

/** All heads in one matmul; GQA as [Hkv, g, Sq, D] against [Hkv, 1, D, Sk] so K/V are never repeated. */
function batched(g: GraphBuilder, shape: AttentionGraphShape, qHeads: string, kT: string, vHeads: string, bias?: string): [string, string] {
  const { sq, hq, hkv, d } = shape;
  const group = hq / hkv;
  const qGrouped = g.op('Reshape', [qHeads, g.ints([hkv, group, sq, d])]);
  const unsqueeze = (x: string) => g.op('Unsqueeze', [x, g.ints([1])]);
  const [out, lse] = softmaxBlock(g, shape, g.op('MatMul', [qGrouped, unsqueeze(kT)]), unsqueeze(vHeads), bias);
  return [g.op('Reshape', [out, g.ints([hq, sq, d])]), g.op('Reshape', [lse, g.ints([hq, sq, 1])])];
}

/**
 * One chain per (query head, row tile); outputs are concatenated back to [Hq, Sq, D] and [Hq, Sq, 1]. Under a
 * causal mask, tile rows [a, b) see only keys [0, b) (or [0, b-1) when strict), so the tile's matmuls stop there:
 * a causal block costs about half a full one.
 */
function tiled(g: GraphBuilder, shape: AttentionGraphShape, qHeads: string, kT: string, vHeads: string, bias?: string): [string, string] {
  const { sq, sk, hq, hkv } = shape;
  const group = hq / hkv;
  const tiles = rowTiles(shape, Math.max(TILE_ROWS, Math.ceil(sq / Math.max(1, Math.floor(MAX_TILES / hq)))));
  const split = (x: string, sizes: number[], axis: number) => (sizes.length === 1 ? [x] : g.opMulti('Split', [x, g.ints(sizes)], sizes.length, { axis }));
  const perHead = (x: string, count: number) => split(x, new Array(count).fill(1), 0);
  const [kHeads, vs, qs] = [perHead(kT, hkv), perHead(vHeads, hkv), perHead(qHeads, hq)];
  // Key prefixes and bias tiles depend only on the tile, not the head: build them once.
  const keyWindows = kHeads.map((kHead, h) =>
    tiles.map((tile) => ({ k: sliced(g, kHead, 2, tile.keyStart, tile.keyEnd, sk), v: sliced(g, vs[h]!, 1, tile.keyStart, tile.keyEnd, sk) })),
  );
  const biasTiles = bias ? tiles.map((tile) => sliced(g, sliced(g, bias, 0, tile.start, tile.end, sq), 1, tile.keyStart, tile.keyEnd, sk)) : [];
  const outs: string[] = [];
  const lses: string[] = [];
  for (let h = 0; h < hq; h++) {
    const kvHead = Math.floor(h / group);
    split(
      qs[h]!,
      tiles.map((tile) => tile.end - tile.start),
      1,
    ).forEach((qTile, t) => {
      const { k, v } = keyWindows[kvHead]![t]!;
      const [out, lse] = softmaxBlock(g, shape, g.op('MatMul', [qTile, k]), v, biasTiles[t]);
      outs.push(out);
      lses.push(lse);
    });
  }
  const concat = (parts: string[]) => (parts.length === 1 ? parts[0]! : g.op('Concat', parts, { axis: 1 }));
  // Tiles are ordered (head, rows): concatenate rows within a head, then heads.
  const byHead = (parts: string[]) => Array.from({ length: hq }, (_, h) => concat(parts.slice(h * tiles.length, (h + 1) * tiles.length)));
  const stack = (parts: string[]) => (parts.length === 1 ? parts[0]! : g.op('Concat', parts, { axis: 0 }));
  return [stack(byHead(outs)), stack(byHead(lses))];
}

/** Tiles of `rows` query rows (every head batched) concatenated back to [Hq, Sq, D] and [Hq, Sq, 1]. */
function rowTiled(g: GraphBuilder, shape: AttentionGraphShape, qHeads: string, kT: string, vHeads: string, bias?: string): [string, string] {
  const { sq, sk } = shape;
  const parts = rowTiles(shape, ROW_TILE).map(({ start, end, keyStart, keyEnd }) =>
    batched(
      g,
      { ...shape, sq: end - start },
      sliced(g, qHeads, 1, start, end, sq),
      sliced(g, kT, 2, keyStart, keyEnd, sk),
      sliced(g, vHeads, 1, keyStart, keyEnd, sk),
      bias && sliced(g, sliced(g, bias, 0, start, end, sq), 1, keyStart, keyEnd, sk),
    ),
  );
  const concat = (xs: string[]) => (xs.length === 1 ? xs[0]! : g.op('Concat', xs, { axis: 1 }));
  return [concat(parts.map(([out]) => out)), concat(parts.map(([, lse]) => lse))];
}

/**
 * Query rows [start, end) of `rows` each, and the keys [keyStart, keyEnd) they can see: under a causal mask only
 * a prefix, under a band only the band's reach (never no key: a tile that sees none computes one, masked, key).
 */
function rowTiles({ sq, sk, mask, band }: AttentionGraphShape, rows: number): { start: number; end: number; keyStart: number; keyEnd: number }[] {
  const clamp = (x: number): number => Math.min(sk, Math.max(0, x));
  return Array.from({ length: Math.ceil(sq / rows) }, (_, i) => {
    const [start, end] = [i * rows, Math.min(sq, (i + 1) * rows)];
    if (mask === 'causal-inclusive') return { start, end, keyStart: 0, keyEnd: Math.min(sk, end) };
    if (mask === 'causal-strict') return { start, end, keyStart: 0, keyEnd: Math.max(1, Math.min(sk, end - 1)) };
    if (mask !== 'band' || !band) return { start, end, keyStart: 0, keyEnd: sk };
    const keyStart = Math.min(clamp(start + band.min), sk - 1);
    return { start, end, keyStart, keyEnd: Math.max(keyStart + 1, clamp(end + band.max)) };
  });
}

/** x[start:end] along `axis` (of `length`), or x itself when that is all of it. */
export function sliced(g: GraphBuilder, x: string, axis: number, start: number, end: number, length: number): string {
  return start === 0 && end === length ? x : g.op('Slice', [x, g.ints([start]), g.ints([end]), g.ints([axis])]);
}

/** out = softmax(scores + bias)·V and lse = max + log(sum exp), from one pass of max, exp and sum. */
function softmaxBlock(g: GraphBuilder, shape: AttentionGraphShape, rawScores: string, values: string, bias?: string): [string, string] {
  const scores = bias ? g.op('Add', [rawScores, bias]) : rawScores;
  const max = g.op('ReduceMax', [scores, g.ints([-1])], { keepdims: 1 });
  const weights = g.op('Exp', [g.op('Sub', [scores, max])]);
  const sum = g.op('ReduceSum', [weights, g.ints([-1])], { keepdims: 1 });
  let out = g.op('Div', [g.op('MatMul', [weights, values]), sum]);
  if (shape.mask === 'causal-strict' || shape.mask === 'band' || shape.mask === 'positions') {
    // Only these masks can hide every key from a row; such a row would average V, so zero it.
    out = g.op('Mul', [out, g.op('Cast', [g.op('Greater', [max, g.scalar(MASKED_SCORE / 10)])], { to: 1 })]);
  }
  return [out, g.op('Add', [max, g.op('Log', [sum])])];
}

/** The additive mask [Sq, Sk], computed inside the graph from index ranges (or the positions inputs). */
function maskBias(g: GraphBuilder, { sq, sk, mask, band }: AttentionGraphShape): string {
  let queryIndex: string;
  let keyIndex: string;
  if (mask === 'positions') {
    queryIndex = g.input('q_pos', 'int32', [sq]);
    keyIndex = g.input('k_pos', 'int32', [sk]);
  } else {
    const int32 = (value: number) => g.constant({ type: 'int32', dims: [], data: Int32Array.of(value) });
    queryIndex = g.op('Range', [int32(0), int32(sq), int32(1)]);
    keyIndex = g.op('Range', [int32(0), int32(sk), int32(1)]);
  }
  const column = g.op('Unsqueeze', [queryIndex, g.ints([1])]); // [Sq, 1]
  const row = g.op('Unsqueeze', [keyIndex, g.ints([0])]); // [1, Sk]
  const visible = mask === 'band' ? bandVisible(g, row, column, sq + sk, band) : g.op(mask === 'causal-strict' ? 'Less' : 'LessOrEqual', [row, column]);
  return g.op('Where', [visible, g.scalar(0), g.scalar(MASKED_SCORE)]);
}

/** min <= j - i <= max as a [Sq, Sk] bool; limits beyond ±(Sq + Sk) change nothing and keep to int32. */
function bandVisible(g: GraphBuilder, row: string, column: string, reach: number, band: AttentionGraphShape['band']): string {
  const limit = (x: number) => g.constant({ type: 'int32', dims: [], data: Int32Array.of(Math.max(-reach, Math.min(reach, x))) });
  const offset = g.op('Sub', [row, column]); // j - i
  return g.op('And', [g.op('GreaterOrEqual', [offset, limit(band?.min ?? -reach)]), g.op('LessOrEqual', [offset, limit(band?.max ?? reach)])]);
}
