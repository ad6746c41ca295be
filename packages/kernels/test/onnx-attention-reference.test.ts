import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';
import { randomTensor, seededRandom, type Tensor } from '@seqpar/core';
import { createAttentionKernel, GraphBuilder, type AttentionKernel } from '../src/index.js';

let kernel: AttentionKernel;
beforeAll(async () => {
  kernel = await createAttentionKernel({ threads: 1 });
});
afterAll(async () => kernel?.close());

/** ONNX's own opset-23 `Attention` op as an independent reference: q, k, v as [1, H, S, D], out back to [S, Hq, D]. */
async function onnxAttention(q: Tensor, k: Tensor, v: Tensor, causal: boolean): Promise<Float32Array> {
  const [sq, hq, d] = q.shape as [number, number, number];
  const [sk, hkv] = k.shape as [number, number];
  const g = new GraphBuilder('onnx_attention');
  const toHeads = (name: string, s: number, h: number) => g.op('Unsqueeze', [g.op('Transpose', [g.input(name, 'float', [s, h, d])], { perm: [1, 0, 2] }), g.ints([0])]);
  const y = g.op('Attention', [toHeads('q', sq, hq), toHeads('k', sk, hkv), toHeads('v', sk, hkv)], { is_causal: causal ? 1 : 0 });
  g.op('Transpose', [g.op('Squeeze', [y, g.ints([0])])], { perm: [1, 0, 2] }, { outputName: 'out' });
  g.output('out', 'float', [sq, hq, d]);
  const session = await ort.InferenceSession.create(g.toModelBytes(23));
  const feeds = { q: new ort.Tensor('float32', q.data, [sq, hq, d]), k: new ort.Tensor('float32', k.data, [sk, hkv, d]), v: new ort.Tensor('float32', v.data, [sk, hkv, d]) };
  const out = (await session.run(feeds))['out']!.data as Float32Array;
  await session.release();
  return out;
}

describe("the kernel against ONNX Runtime's opset-23 Attention op", () => {
  it.each([
    [257, 257, 4, 4, 64, false],
    [257, 257, 4, 4, 64, true],
    [100, 300, 6, 2, 32, false],
    [33, 33, 6, 3, 128, true],
  ])('Sq %i, Sk %i, Hq %i, Hkv %i, D %i, causal %s', async (sq, sk, hq, hkv, d, causal) => {
    const random = seededRandom(sq + sk + hq + d);
    const q = randomTensor([sq, hq, d], random);
    const k = randomTensor([sk, hkv, d], random);
    const v = randomTensor([sk, hkv, d], random);
    const expected = await onnxAttention(q, k, v, causal);
    const { out } = await kernel.attend(q, k, v, { kind: causal ? 'causal-inclusive' : 'none' });
    let max = 0;
    for (let i = 0; i < out.data.length; i++) max = Math.max(max, Math.abs(out.data[i]! - expected[i]!));
    expect(max).toBeLessThanOrEqual(1e-5);
  });
});
