import { MASKED_SCORE } from '@seqpar/core';
import { GraphBuilder } from './graph-builder.js';

export interface DecodeAttentionShape {
  /** New queries per call: 1 for a decode step. */
  readonly t: number;
  readonly hq: number;
  readonly hkv: number;
  readonly d: number;
  /** Sliding window W: a query at i sees only rows at i-W < j (the rest of the share is not kept, kv-cache.ts). */
  readonly window?: number;
}

/**
 * Attention of `t` new queries over a KV cache share kept on the compute thread, with its log-sum-exp, as one
 * graph for every cache size (P symbolic, so one session serves a whole generation):
 *   inputs  q [t, Hq, D], q_pos [t] int32, k and v [Hkv, P, D] (the cache as resident-tensors.ts keeps it,
 *           head-major), k_pos [P] int32 (rows not yet written carry a position no query reaches)
 *   outputs out [t, Hq, D] and lse [Hq, t]
 * Query at position i sees cache rows at positions j <= i (and i - W < j with a window). The cache is read as stored, never copied or
 * transposed. Scores are an Einsum over K [Hkv, P, D] that ORT runs with K as the big left operand, one pass over
 * K for the group's queries; measured at P = 32k, Hkv 2, D 32, group 4, K not in cache: 1.12 ms, against 1.70 for
 * one matrix-vector product per query head and 2.7 for a MatMul with K fed transposed. Scores are [Hkv, g·t, P],
 * keys last, so the mask, max, exp and sum stream along rows and the weights meet V [Hkv, P, D] as they are.
 */
export function buildDecodeAttentionGraph({ t, hq, hkv, d, window }: DecodeAttentionShape): Uint8Array {
  const g = new GraphBuilder('decode_attention');
  const q = g.input('q', 'float', [t, hq, d]);
  const queryPositions = g.input('q_pos', 'int32', [t]);
  const share = cacheInputs(g, hkv, d, '');
  attendShare(g, q, queryPositions, share, { t, hq, hkv, d, ...(window === undefined ? {} : { window }) }, { out: 'out', lse: 'lse' });
  g.output('out', 'float', [t, hq, d]);
  g.output('lse', 'float', [hq, t]);
  return g.toModelBytes();
}

export interface BatchedDecodeAttentionShape extends Omit<DecodeAttentionShape, 't'> {
  /** Sessions per call, one new query each, every one over its own cache share. */
  readonly sessions: number;
}

/**
 * One decode step's attention for several sessions in one run: query row i of q [B, Hq, D] (at q_pos[i]) attends
 * over cache share i, fed as k<i>, v<i> [Hkv, P<i>, D] and k_pos<i> [P<i>], each of its own size; outputs
 * out [B, Hq, D] and lse [Hq, B]. Each session's part is the graph above for one query, so its bits are the ones a
 * run of its own gives; what the batch saves is a run (and its feeds and outputs crossing into ORT) per session.
 */
export function buildBatchedDecodeAttentionGraph({ sessions, hq, hkv, d, window }: BatchedDecodeAttentionShape): Uint8Array {
  const g = new GraphBuilder('batched_decode_attention');
  const q = g.input('q', 'float', [sessions, hq, d]);
  const queryPositions = g.input('q_pos', 'int32', [sessions]);
  const rowsOf = (input: string) => (sessions === 1 ? [input] : g.opMulti('Split', [input, g.ints(new Array<number>(sessions).fill(1))], sessions, { axis: 0 }));
  const [queries, positions] = [rowsOf(q), rowsOf(queryPositions)];
  const parts = queries.map((query, i) =>
    attendShare(g, query, positions[i]!, cacheInputs(g, hkv, d, String(i)), { t: 1, hq, hkv, d, ...(window === undefined ? {} : { window }) }),
  );
  const join = (names: string[], axis: number, outputName: string) =>
    names.length === 1 ? g.op('Identity', names, {}, { outputName }) : g.op('Concat', names, { axis }, { outputName });
  join(
    parts.map((part) => part.out),
    0,
    'out',
  );
  join(
    parts.map((part) => part.lse),
    1,
    'lse',
  );
  g.output('out', 'float', [sessions, hq, d]);
  g.output('lse', 'float', [hq, sessions]);
  return g.toModelBytes();
}

interface CacheInputs {
  readonly k: string;
  readonly v: string;
  readonly positions: string;
}

/** The inputs of one cache share: k<suffix>, v<suffix> [Hkv, P<suffix>, D] and k_pos<suffix> [P<suffix>]. */
function cacheInputs(g: GraphBuilder, hkv: number, d: number, suffix: string): CacheInputs {
  const rows = `P${suffix}`;
  return { k: g.input(`k${suffix}`, 'float', [hkv, rows, d]), v: g.input(`v${suffix}`, 'float', [hkv, rows, d]), positions: g.input(`k_pos${suffix}`, 'int32', [rows]) };
}

/** Attention of queries q [t, Hq, D] at `queryPositions` [t] over one cache share: out [t, Hq, D] and lse [Hq, t]. */
function attendShare(
  g: GraphBuilder,
  q: string,
  queryPositions: string,
  share: CacheInputs,
  { t, hq, hkv, d, window }: DecodeAttentionShape,
  names: { out?: string; lse?: string } = {},
): { out: string; lse: string } {
  const group = hq / hkv;
  const queryHeads = g.op('Transpose', [g.op('Reshape', [q, g.ints([t, hkv, group, d])])], { perm: [1, 2, 0, 3] }); // [Hkv, g, t, D]
  const queryRows = g.op('Reshape', [g.op('Mul', [queryHeads, g.scalar(1 / Math.sqrt(d))]), g.ints([hkv, group * t, d])]);
  const scores = g.op('Reshape', [g.op('Einsum', [share.k, queryRows], { equation: 'hpd,hjd->hjp' }), g.ints([hkv, group, t, -1])]); // [Hkv, g, t, P]
  const [keyRow, queryColumn] = [g.op('Unsqueeze', [share.positions, g.ints([0])]), g.op('Unsqueeze', [queryPositions, g.ints([1])])];
  const causal = g.op('LessOrEqual', [keyRow, queryColumn]); // [t, P]
  const int32 = (value: number) => g.constant({ type: 'int32', dims: [], data: Int32Array.of(value) });
  const visible = window === undefined ? causal : g.op('And', [causal, g.op('Greater', [keyRow, g.op('Sub', [queryColumn, int32(window)])])]);
  const masked = g.op('Reshape', [g.op('Add', [scores, g.op('Where', [visible, g.scalar(0), g.scalar(MASKED_SCORE)])]), g.ints([hkv, group * t, -1])]);
  const max = g.op('ReduceMax', [masked, g.ints([-1])], { keepdims: 1 }); // [Hkv, g·t, 1]
  const weights = g.op('Exp', [g.op('Sub', [masked, max])]);
  const sum = g.op('ReduceSum', [weights, g.ints([-1])], { keepdims: 1 });
  // A query that sees no row of this share would average V: zero it; its lse stays ≈ -1e30.
  const seen = g.op('Cast', [g.op('Greater', [max, g.scalar(MASKED_SCORE / 10)])], { to: 1 });
  const out = g.op('Mul', [g.op('MatMul', [weights, share.v]), g.op('Div', [seen, sum])]); // [Hkv, g·t, D]
  return {
    out: g.op(
      'Reshape',
      [g.op('Transpose', [g.op('Reshape', [out, g.ints([hkv, group, t, d])])], { perm: [2, 0, 1, 3] }), g.ints([t, hq, d])],
      {},
      names.out ? { outputName: names.out } : {},
    ),
    lse: g.op('Reshape', [g.op('Add', [max, g.op('Log', [sum])]), g.ints([hq, t])], {}, names.lse ? { outputName: names.lse } : {}),
  };
}
