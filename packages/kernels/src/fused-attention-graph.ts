import { GraphBuilder } from './graph-builder.js';
import type { AttentionGraphShape } from './attention-graph.js';

/**
 * Below this weight of the reference key the fused graph's lse loses precision (e^-80, still a normal float32),
 * so the caller recomputes the block with the exact graph.
 */
const MIN_REFERENCE_WEIGHT = Math.exp(-80);

/**
 * Unmasked block attention with its log-sum-exp on ONNX Runtime's fused com.microsoft MultiHeadAttention, which
 * runs at MatMul speed but returns no lse. We read the lse out of the op by giving it one extra key and two extra
 * value channels:
 *
 *   keys    [ k*     | k_0 ... k_{Sk-1} ]     k* = mean of the keys, so its score c_i = q_i·k* / sqrt(D) <= max_j s_ij
 *   values  [ 0  0 1 | v_j  1  0        ]     (D + 2 channels)
 *
 *   y_i = [ Σ_j w_j v_j,  a = Σ_j w_j,  b = w* ]   with w = softmax over all Sk + 1 scores
 *   out_i = y_i[:D] / a          lse_i = log Σ_j e^(s_ij) = c_i + log(a / b)
 *
 * Both a and b carry full relative precision however small they are (no 1 - x cancellation), and a >= 1/(Sk+1)
 * because c_i never exceeds the row max. b underflows only if the row max exceeds the mean score by about 80;
 * then output `fallback` is 1 and the block must be recomputed by the exact graph (buildAttentionGraph).
 * The wider V costs the fused op ~12-15%; the extra inputs and outputs are O(S·H·D), not O(S²).
 */
export function buildFusedAttentionGraph(shape: AttentionGraphShape): Uint8Array {
  const { sq, sk, hq, hkv, d } = shape;
  if (shape.mask !== 'none') throw new Error(`the fused attention graph has no '${shape.mask}' mask`);
  const g = new GraphBuilder('attention_fused');
  const q = g.input('q', 'float', [sq, hq, d]);
  const k = repeatKvHeads(g, g.input('k', 'float', [sk, hkv, d]), sk, hq, hkv, d); // [Sk, Hq, D]
  const v = repeatKvHeads(g, g.input('v', 'float', [sk, hkv, d]), sk, hq, hkv, d);

  const reference = g.op('ReduceMean', [k, g.ints([0])], { keepdims: 1 }); // k* [1, Hq, D]
  const referenceScore = g.op('Mul', [g.op('ReduceSum', [g.op('Mul', [q, reference]), g.ints([2])], { keepdims: 1 }), g.scalar(1 / Math.sqrt(d))]); // c [Sq, Hq, 1]
  const keys = g.op('Concat', [reference, k], { axis: 0 }); // [Sk+1, Hq, D]
  const channel = (value: number) => g.op('Expand', [g.scalar(value), g.ints([sk, hq, 1])]);
  const referenceValue = g.constant({ type: 'float', dims: [1, hq, d + 2], data: Float32Array.from({ length: hq * (d + 2) }, (_, i) => (i % (d + 2) === d + 1 ? 1 : 0)) });
  const values = g.op('Concat', [referenceValue, g.op('Concat', [v, channel(1), channel(0)], { axis: 2 })], { axis: 0 }); // [Sk+1, Hq, D+2]

  const flat = (x: string, rows: number, width: number) => g.op('Reshape', [x, g.ints([1, rows, hq * width])]);
  const y = g.op('MultiHeadAttention', [flat(q, sq, d), flat(keys, sk + 1, d), flat(values, sk + 1, d + 2)], { num_heads: hq }, { domain: 'com.microsoft' });
  const [weighted, a, b] = g.opMulti('Split', [g.op('Reshape', [y, g.ints([sq, hq, d + 2])]), g.ints([d, 1, 1])], 3, { axis: 2 }) as [string, string, string];

  g.op('Div', [weighted, a], {}, { outputName: 'out' });
  const lse = g.op('Add', [referenceScore, g.op('Sub', [g.op('Log', [a]), g.op('Log', [b])])]); // [Sq, Hq, 1]
  g.op('Transpose', [g.op('Reshape', [lse, g.ints([sq, hq])])], { perm: [1, 0] }, { outputName: 'lse' });
  const tooSmall = g.op('Cast', [g.op('Less', [b, g.scalar(MIN_REFERENCE_WEIGHT)])], { to: 1 });
  g.op('ReduceMax', [tooSmall], { keepdims: 0 }, { outputName: 'fallback' });
  g.output('out', 'float', [sq, hq, d]);
  g.output('lse', 'float', [hq, sq]);
  g.output('fallback', 'float', []);
  return g.toModelBytes(21, { 'com.microsoft': 1 });
}

/** GQA for an op without it: [Sk, Hkv, D] -> [Sk, Hq, D], query head h reading kv head floor(h / group). */
function repeatKvHeads(g: GraphBuilder, x: string, sk: number, hq: number, hkv: number, d: number): string {
  if (hq === hkv) return x;
  const expanded = g.op('Expand', [g.op('Unsqueeze', [x, g.ints([2])]), g.ints([sk, hkv, hq / hkv, d])]);
  return g.op('Reshape', [expanded, g.ints([sk, hq, d])]);
}
