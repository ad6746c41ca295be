import ort from 'onnxruntime-node';
import type { Tensor } from '@seqpar/core';
import { GraphBuilder } from '@seqpar/kernels';
import { layerWindow, ropeTables, rmsNorm, rotateHalf, type LoadedModel } from '../src/index.js';

const transposed = (t: Tensor) => {
  const [rows, cols] = t.shape as [number, number];
  const data = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[c * rows + r] = t.data[r * cols + c]!;
  return { type: 'float' as const, dims: [cols, rows], data };
};

/**
 * The whole model as ONE ONNX graph in one session: embedding gather, every layer with plain causal softmax
 * attention over the full sequence (K/V heads repeated for GQA; a layer's sliding window in its mask), and the lm
 * head. No strategy, no merge, no
 * sharding: an independent reference for sequence-parallel prefill.
 */
export async function monolithicLogits(model: LoadedModel, prompt: readonly number[]): Promise<Float32Array> {
  const { config, weights } = model;
  const { numHeads: hq, numKvHeads: hkv, headDim: dh } = config;
  const s = prompt.length;
  const g = new GraphBuilder('monolithic');
  const ids = g.input('ids', 'int64', [s]);
  const cos = g.op('Unsqueeze', [g.input('cos', 'float', [s, dh]), g.ints([0])]); // [1, S, Dh]
  const sin = g.op('Unsqueeze', [g.input('sin', 'float', [s, dh]), g.ints([0])]);
  // Query i sees key j when j <= i and, under a window W, i - W < j.
  const maskOf = (window = Infinity) =>
    g.constant({ type: 'float', dims: [s, s], data: new Float32Array(s * s).map((_, at) => (at % s <= Math.floor(at / s) && Math.floor(at / s) - (at % s) < window ? 0 : -1e30)) });
  let x = g.op('Gather', [g.constant({ type: 'float', dims: weights.embedTokens.shape, data: weights.embedTokens.data }), ids], { axis: 0 });
  const heads = (t: string, n: number) => g.op('Transpose', [g.op('Reshape', [t, g.ints([s, n, dh])])], { perm: [1, 0, 2] }); // [n, S, Dh]
  const linear = (t: string, w: Tensor, b?: Tensor) => {
    const y = g.op('MatMul', [t, g.constant(transposed(w))]);
    return b ? g.op('Add', [y, g.constant({ type: 'float', dims: b.shape, data: b.data })]) : y;
  };
  const rope = (t: string) => g.op('Add', [g.op('Mul', [t, cos]), g.op('Mul', [rotateHalf(g, t, dh), sin])]);
  const repeatKv = (t: string) => g.op('Reshape', [g.op('Expand', [g.op('Unsqueeze', [t, g.ints([1])]), g.ints([hkv, hq / hkv, s, dh])]), g.ints([hq, s, dh])]);
  for (const [index, layer] of weights.layers.entries()) {
    const mask = maskOf(layerWindow(config, index));
    const n = rmsNorm(g, x, layer.inputNorm, config.rmsNormEps);
    const q = rope(heads(linear(n, layer.qProj, layer.qBias), hq));
    const k = repeatKv(rope(heads(linear(n, layer.kProj, layer.kBias), hkv)));
    const v = repeatKv(heads(linear(n, layer.vProj, layer.vBias), hkv));
    const scores = g.op('Add', [g.op('Div', [g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 2, 1] })]), g.scalar(Math.sqrt(dh))]), mask]);
    const attn = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]); // [Hq, S, Dh]
    x = g.op('Add', [x, linear(g.op('Reshape', [g.op('Transpose', [attn], { perm: [1, 0, 2] }), g.ints([s, hq * dh])]), layer.oProj)]);
    const m = rmsNorm(g, x, layer.postNorm, config.rmsNormEps);
    const gate = linear(m, layer.gateProj);
    x = g.op('Add', [x, linear(g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), linear(m, layer.upProj)]), layer.downProj)]);
  }
  g.op('Identity', [linear(rmsNorm(g, x, weights.finalNorm, config.rmsNormEps), weights.lmHead)], {}, { outputName: 'logits' });
  g.output('logits', 'float', [s, config.vocabSize]);
  const session = await ort.InferenceSession.create(g.toModelBytes());
  const tables = ropeTables(
    Array.from({ length: s }, (_, i) => i),
    dh,
    config.ropeTheta,
  );
  const result = await session.run({
    ids: new ort.Tensor('int64', BigInt64Array.from(prompt.map(BigInt)), [s]),
    cos: new ort.Tensor('float32', tables.cos, [s, dh]),
    sin: new ort.Tensor('float32', tables.sin, [s, dh]),
  });
  await session.release();
  return result['logits']!.data as Float32Array;
}
