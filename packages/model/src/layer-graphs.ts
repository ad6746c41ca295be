import type { Tensor } from '@seqpar/core';
import { GraphBuilder } from '@seqpar/kernels';
import type { ModelConfig } from './config.js';
import type { LayerWeights, ModelWeights } from './weights.js';

/**
 * The token-local parts of a Llama-family decoder as ONNX graphs, weights folded in as initializers. Every graph
 * takes any number of tokens t (a rank's share of the prompt, or one new token) — attention between tokens is
 * not here: it runs through a strategy between the graphs.
 *   pre-attention  x [t, H], cos/sin [t, Dh] -> q [t, Hq, Dh], k [t, Hkv, Dh], v [t, Hkv, Dh]   (RMSNorm, q/k/v, RoPE)
 *   post-attention x [t, H], attn [t, Hq, Dh] -> x [t, H]                           (o_proj, residual, RMSNorm, SwiGLU)
 *   head           x [t, H] -> logits [t, V]                                          (final RMSNorm, lm_head)
 * Semantics are Hugging Face's LlamaForCausalLM: rotate-half RoPE, weights in [out, in] layout (Gemm transB).
 */
export function buildPreAttentionGraph(config: ModelConfig, layer: LayerWeights): Uint8Array {
  const { hiddenSize, numHeads, numKvHeads, headDim } = config;
  const g = new GraphBuilder('pre_attention');
  const x = g.input('x', 'float', ['t', hiddenSize]);
  const cos = g.op('Unsqueeze', [g.input('cos', 'float', ['t', headDim]), g.ints([1])]); // [t, 1, Dh]
  const sin = g.op('Unsqueeze', [g.input('sin', 'float', ['t', headDim]), g.ints([1])]);
  const h = rmsNorm(g, x, layer.inputNorm, config.rmsNormEps);
  const project = (weight: Tensor, bias: Tensor | undefined, heads: number) =>
    g.op('Reshape', [g.op('Gemm', [h, g.constant(floats(weight)), ...(bias ? [g.constant(floats(bias))] : [])], { transB: 1 }), g.ints([0, heads, headDim])]);
  const rope = (t: string) => g.op('Add', [g.op('Mul', [t, cos]), g.op('Mul', [rotateHalf(g, t, headDim), sin])]);
  g.op('Identity', [rope(project(layer.qProj, layer.qBias, numHeads))], {}, { outputName: 'q' });
  g.op('Identity', [rope(project(layer.kProj, layer.kBias, numKvHeads))], {}, { outputName: 'k' });
  g.op('Identity', [project(layer.vProj, layer.vBias, numKvHeads)], {}, { outputName: 'v' });
  g.output('q', 'float', ['t', numHeads, headDim]);
  g.output('k', 'float', ['t', numKvHeads, headDim]);
  g.output('v', 'float', ['t', numKvHeads, headDim]);
  return g.toModelBytes();
}

export function buildPostAttentionGraph(config: ModelConfig, layer: LayerWeights): Uint8Array {
  const { hiddenSize, numHeads, headDim } = config;
  const g = new GraphBuilder('post_attention');
  const x = g.input('x', 'float', ['t', hiddenSize]);
  const attn = g.op('Reshape', [g.input('attn', 'float', ['t', numHeads, headDim]), g.ints([0, numHeads * headDim])]);
  const linear = (input: string, weight: Tensor) => g.op('Gemm', [input, g.constant(floats(weight))], { transB: 1 });
  const residual = g.op('Add', [x, linear(attn, layer.oProj)]);
  const h = rmsNorm(g, residual, layer.postNorm, config.rmsNormEps);
  const gate = linear(h, layer.gateProj);
  const activated = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), linear(h, layer.upProj)]); // SiLU(gate) * up
  g.op('Add', [residual, linear(activated, layer.downProj)], {}, { outputName: 'y' });
  g.output('y', 'float', ['t', hiddenSize]);
  return g.toModelBytes();
}

export function buildHeadGraph(config: ModelConfig, weights: ModelWeights): Uint8Array {
  const g = new GraphBuilder('lm_head');
  const x = g.input('x', 'float', ['t', config.hiddenSize]);
  const h = rmsNorm(g, x, weights.finalNorm, config.rmsNormEps);
  g.op('Gemm', [h, g.constant(floats(weights.lmHead))], { transB: 1 }, { outputName: 'logits' });
  g.output('logits', 'float', ['t', config.vocabSize]);
  return g.toModelBytes();
}

/** RMSNorm: x / sqrt(mean(x²) + eps) · w, over the last axis. */
export function rmsNorm(g: GraphBuilder, x: string, weight: Tensor, eps: number): string {
  const meanSquare = g.op('ReduceMean', [g.op('Mul', [x, x]), g.ints([-1])], { keepdims: 1 });
  const inverseRms = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSquare, g.scalar(eps)])])]);
  return g.op('Mul', [g.op('Mul', [x, inverseRms]), g.constant(floats(weight))]);
}

/** rotate_half: [x1, x2] -> [-x2, x1] over the last axis (halves of the head dim). */
export function rotateHalf(g: GraphBuilder, x: string, headDim: number): string {
  const [first, second] = g.opMulti('Split', [x, g.ints([headDim / 2, headDim / 2])], 2, { axis: -1 });
  return g.op('Concat', [g.op('Neg', [second!]), first!], { axis: -1 });
}

const floats = (t: Tensor) => ({ type: 'float' as const, dims: t.shape, data: t.data });

/**
 * RoPE tables for the given global positions: cos and sin of position · θ^(-2i/Dh), each [t, Dh] with the Dh/2
 * frequencies repeated (Hugging Face's rotate-half layout).
 */
export function ropeTables(positions: ArrayLike<number>, headDim: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const cos = new Float32Array(positions.length * headDim);
  const sin = new Float32Array(positions.length * headDim);
  for (let t = 0; t < positions.length; t++) {
    for (let i = 0; i < half; i++) {
      const angle = positions[t]! * Math.fround(1 / theta ** ((2 * i) / headDim));
      const [c, s] = [Math.cos(angle), Math.sin(angle)];
      cos[t * headDim + i] = cos[t * headDim + i + half] = c;
      sin[t * headDim + i] = sin[t * headDim + i + half] = s;
    }
  }
  return { cos, sin };
}
