import { GraphBuilder } from './graph-builder.js';
import type { AttentionGraphShape } from './attention-graph.js';

/**
 * Below this weight of the reference key the fused graph's lse loses precision (e^-80, still a normal float32),
 * so the caller recomputes the block with the exact graph.
 */
const MIN_REFERENCE_WEIGHT = Math.exp(-80);

/**
 * Unmasked block attention with its log-sum-exp on ONNX Runtime's fused com.microsoft MultiHeadAttention, which
 * runs at MatMul speed but returns no lse. We read the lse out of the op by giving it one extra key and one extra
 * value channel:
 *
 *   keys    [ k*    | k_0 ... k_{Sk-1} ]     k* = mean of the keys, so its score c_i = q_i·k* / sqrt(D) <= max_j s_ij
 *   values  [ 0  1  | v_j  0           ]     (D + 1 channels)
 *
 *   y_i = [ Σ_j w_j v_j,  b = w* ]   with w = softmax over all Sk + 1 scores, so Σ_j w_j = 1 - b
 *   out_i = y_i[:D] / (1 - b)        lse_i = log Σ_j e^(s_ij) = c_i + log((1 - b) / b)
 *
 * Since c_i never exceeds the row max, b <= 1/2: 1 - b has full precision, and b keeps its relative precision
 * however small it is. b underflows only if the row max exceeds the mean score by about 80; then output
 * `fallback` is 1 and the block must be recomputed by the exact graph (buildAttentionGraph).
 * The wider V costs the fused op ~15% (65 channels cost what 80 do); the rest is O(S·H·D), not O(S²).
 */
export function buildFusedAttentionGraph(shape: AttentionGraphShape): Uint8Array {
  const { sq, sk, hq, hkv, d } = shape;
  const g = new GraphBuilder('attention_fused');
  emitFusedAttention(g, shape, g.input('q', 'float', [sq, hq, d]), g.input('k', 'float', [sk, hkv, d]), g.input('v', 'float', [sk, hkv, d]), {
    out: 'out',
    lse: 'lse',
    fallback: 'fallback',
  });
  g.output('out', 'float', [sq, hq, d]);
  g.output('lse', 'float', [hq, sq]);
  g.output('fallback', 'float', []);
  return g.toModelBytes(21, { 'com.microsoft': 1 });
}

/** The fused graph's ops on q, k and v already in `g` (a model importing com.microsoft): out, lse and fallback. */
export function emitFusedAttention(
  g: GraphBuilder,
  shape: AttentionGraphShape,
  q: string,
  kIn: string,
  vIn: string,
  names: { out?: string; lse?: string; fallback?: string } = {},
): { out: string; lse: string; fallback: string } {
  const { sq, sk, hq, hkv, d } = shape;
  if (shape.mask !== 'none') throw new Error(`the fused attention graph has no '${shape.mask}' mask`);
  const named = (name?: string) => (name ? { outputName: name } : {});
  const k = repeatKvHeads(g, kIn, sk, hq, hkv, d); // [Sk, Hq, D]
  const v = repeatKvHeads(g, vIn, sk, hq, hkv, d);
  const reference = g.op('ReduceMean', [k, g.ints([0])], { keepdims: 1 }); // k* [1, Hq, D]
  const referenceScore = g.op('Mul', [g.op('ReduceSum', [g.op('Mul', [q, reference]), g.ints([2])], { keepdims: 1 }), g.scalar(1 / Math.sqrt(d))]); // c [Sq, Hq, 1]
  const keys = g.op('Concat', [reference, k], { axis: 0 }); // [Sk+1, Hq, D]
  // One copy of V: pad a zero row in front (k*'s value) and a zero channel, then mark k*'s channel in place.
  const padded = g.op('Pad', [v, g.ints([1, 0, 0, 0, 0, 1])]); // [Sk+1, Hq, D+1]
  const marks = g.constant({ type: 'int64', dims: [hq, 3], data: BigInt64Array.from({ length: hq * 3 }, (_, i) => BigInt([0, Math.floor(i / 3), d][i % 3]!)) });
  const values = g.op('ScatterND', [padded, marks, g.op('Expand', [g.scalar(1), g.ints([hq])])]);

  const flat = (x: string, rows: number, width: number) => g.op('Reshape', [x, g.ints([1, rows, hq * width])]);
  const y = g.op('MultiHeadAttention', [flat(q, sq, d), flat(keys, sk + 1, d), flat(values, sk + 1, d + 1)], { num_heads: hq }, { domain: 'com.microsoft' });
  const [weighted, b] = g.opMulti('Split', [g.op('Reshape', [y, g.ints([sq, hq, d + 1])]), g.ints([d, 1])], 2, { axis: 2 }) as [string, string];
  const a = g.op('Sub', [g.scalar(1), b]);

  const out = g.op('Div', [weighted, a], {}, named(names.out));
  const lse = g.op('Add', [referenceScore, g.op('Log', [g.op('Div', [a, b])])]); // [Sq, Hq, 1]
  const lseHeads = g.op('Transpose', [g.op('Reshape', [lse, g.ints([sq, hq])])], { perm: [1, 0] }, named(names.lse));
  const tooSmall = g.op('Cast', [g.op('Less', [b, g.scalar(MIN_REFERENCE_WEIGHT)])], { to: 1 });
  return { out, lse: lseHeads, fallback: g.op('ReduceMax', [tooSmall], { keepdims: 0 }, named(names.fallback)) };
}

/** GQA for an op without it: [Sk, Hkv, D] -> [Sk, Hq, D], query head h reading kv head floor(h / group). */
function repeatKvHeads(g: GraphBuilder, x: string, sk: number, hq: number, hkv: number, d: number): string {
  if (hq === hkv) return x;
  const expanded = g.op('Expand', [g.op('Unsqueeze', [x, g.ints([2])]), g.ints([sk, hkv, hq / hkv, d])]);
  return g.op('Reshape', [expanded, g.ints([sk, hq, d])]);
}
