import { MASKED_SCORE, type MaskKind } from '@seqpar/core';
import { GraphBuilder } from './graph-builder.js';

export interface AttentionGraphShape {
  readonly sq: number;
  readonly sk: number;
  readonly hq: number;
  readonly hkv: number;
  readonly d: number;
  readonly mask: MaskKind;
}

/**
 * Block attention with its log-sum-exp, as one ONNX graph:
 *   inputs  q [Sq, Hq, D], k and v [Sk, Hkv, D] (+ q_pos [Sq], k_pos [Sk] int32 for the positions mask)
 *   outputs out [Sq, Hq, D] and lse [Hq, Sq]
 * GQA without copying K/V: the g = Hq/Hkv query heads that read one kv head become g·Sq rows of one matmul, so
 * scores are [Hkv, g·Sq, Sk]. The scale goes on q (Sq·Hq·D multiplies, not Sq·Sk·Hq). Masked scores get -1e30
 * added (not -Infinity) so the max stays finite; a row with no visible key ends with lse ≈ -1e30 and out 0.
 */
export function buildAttentionGraph(shape: AttentionGraphShape): Uint8Array {
  const { sq, sk, hq, hkv, d, mask } = shape;
  const group = hq / hkv;
  const g = new GraphBuilder(`attention_${mask}`);
  const q = g.input('q', 'float', [sq, hq, d]);
  const k = g.input('k', 'float', [sk, hkv, d]);
  const v = g.input('v', 'float', [sk, hkv, d]);

  // [Sq, Hq, D] -> [Hkv, g·Sq, D]: head h = kv·g + i, rows ordered (i, token).
  const qScaled = g.op('Mul', [q, g.scalar(1 / Math.sqrt(d))]);
  const qGrouped = g.op('Reshape', [g.op('Transpose', [g.op('Reshape', [qScaled, g.ints([sq, hkv, group, d])])], { perm: [1, 2, 0, 3] }), g.ints([hkv, group * sq, d])]);
  const kT = g.op('Transpose', [k], { perm: [1, 2, 0] }); // [Hkv, D, Sk]
  const vHeads = g.op('Transpose', [v], { perm: [1, 0, 2] }); // [Hkv, Sk, D]
  let scores = g.op('MatMul', [qGrouped, kT]); // [Hkv, g·Sq, Sk]

  if (mask !== 'none') {
    const bias = maskBias(g, shape); // [Sq, Sk]: 0 where visible, -1e30 where not
    const perHead = g.op('Add', [g.op('Reshape', [scores, g.ints([hkv, group, sq, sk])]), bias]);
    scores = g.op('Reshape', [perHead, g.ints([hkv, group * sq, sk])]);
  }
  const max = g.op('ReduceMax', [scores, g.ints([-1])], { keepdims: 1 });
  const weights = g.op('Exp', [g.op('Sub', [scores, max])]);
  const sum = g.op('ReduceSum', [weights, g.ints([-1])], { keepdims: 1 });
  let out = g.op('Div', [g.op('MatMul', [weights, vHeads]), sum]); // [Hkv, g·Sq, D]
  if (mask === 'causal-strict' || mask === 'positions') {
    // Only these masks can hide every key from a row; such rows would average V, so zero them.
    const seesAnything = g.op('Cast', [g.op('Greater', [max, g.scalar(MASKED_SCORE / 10)])], { to: 1 });
    out = g.op('Mul', [out, seesAnything]);
  }
  g.op('Transpose', [g.op('Reshape', [out, g.ints([hq, sq, d])])], { perm: [1, 0, 2] }, { outputName: 'out' });
  g.op('Reshape', [g.op('Add', [max, g.op('Log', [sum])]), g.ints([hq, sq])], {}, { outputName: 'lse' });
  g.output('out', 'float', [sq, hq, d]);
  g.output('lse', 'float', [hq, sq]);
  return g.toModelBytes();
}

/** The additive mask [Sq, Sk], computed inside the graph from index ranges (or the positions inputs). */
function maskBias(g: GraphBuilder, { sq, sk, mask }: AttentionGraphShape): string {
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
  const visible = g.op(mask === 'causal-strict' ? 'Less' : 'LessOrEqual', [row, column]);
  return g.op('Where', [visible, g.scalar(0), g.scalar(MASKED_SCORE)]);
}
