import { mkdtempSync, readFileSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, loadModel, makeTinyModel, readModelTensors } from '../src/index.js';

const freshDir = () => mkdtempSync(join(tmpdir(), 'seqpar-model-'));

describe('makeTinyModel + loadModel', () => {
  it('round-trips a float32 model and checks every shape against config.json', async () => {
    const dir = freshDir();
    await makeTinyModel(dir, { layers: 2, hidden: 32, heads: 4, kvHeads: 2, vocab: 300, seed: 1 });
    const { config, weights } = await loadModel(dir);
    expect(config).toMatchObject({ modelType: 'llama', hiddenSize: 32, numHeads: 4, numKvHeads: 2, headDim: 8, numLayers: 2, vocabSize: 300 });
    expect(weights.layers).toHaveLength(2);
    expect(weights.layers[1]!.kProj.shape).toEqual([16, 32]);
    expect(weights.lmHead.shape).toEqual([300, 32]);
  });

  it.each(['F16', 'BF16'] as const)('%s weights load to the float32 conversion of the same values', async (dtype) => {
    const [f32Dir, halfDir] = [freshDir(), freshDir()];
    await makeTinyModel(f32Dir, { seed: 5 });
    await makeTinyModel(halfDir, { seed: 5, dtype });
    const [full, half] = [await readModelTensors(f32Dir), await readModelTensors(halfDir)];
    const [encode, decode] = dtype === 'F16' ? [f32ToF16, f16ToF32] : [f32ToBf16, bf16ToF32];
    expect([...half.keys()]).toEqual([...full.keys()]);
    for (const [name, tensor] of full) {
      const expected = Float32Array.from(tensor.data, (value) => decode(encode(value)));
      expect(half.get(name)!.shape, name).toEqual(tensor.shape);
      expect(half.get(name)!.data, name).toEqual(expected);
    }
  });

  it('reads a model sharded with model.safetensors.index.json, qwen2 biases and tied embeddings', async () => {
    const dir = freshDir();
    await makeTinyModel(dir, { shards: 3, modelType: 'qwen2', tieWordEmbeddings: true });
    const { weights, config } = await loadModel(dir);
    expect(config.attentionBias).toBe(true);
    expect(weights.layers[0]!.qBias?.shape).toEqual([64]);
    expect(weights.lmHead).toBe(weights.embedTokens);
  });

  it('rejects an index that points outside its directory, and a tensor found in two shards', async () => {
    const dir = freshDir();
    await makeTinyModel(dir, { shards: 2 });
    const indexPath = join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(readFileSync(indexPath, 'utf8'));
    const first = 'model.embed_tokens.weight';
    const second = Object.keys(index.weight_map).find((name) => index.weight_map[name] !== index.weight_map[first])!;
    writeFileSync(indexPath, JSON.stringify({ weight_map: { ...index.weight_map, [first]: '../elsewhere.safetensors' } }));
    await expect(loadModel(dir)).rejects.toMatchObject({
      code: 'ERR_MODEL_FORMAT',
      message: expect.stringMatching(/weight_map names "..\/elsewhere.safetensors" for model.embed_tokens.weight/),
    });
    const shardOf = (name: string) => join(dir, index.weight_map[name]);
    writeFileSync(indexPath, JSON.stringify(index));
    writeFileSync(shardOf(second), readFileSync(shardOf(first))); // both shards now hold the first shard's tensors
    await expect(loadModel(dir)).rejects.toMatchObject({
      code: 'ERR_MODEL_FORMAT',
      message: expect.stringMatching(/tensor model.embed_tokens.weight is also in an earlier shard/),
    });
  });

  it('rejects missing and truncated weights, contradicting shapes and unknown model types with typed errors', async () => {
    const missing = freshDir();
    await expect(loadModel(missing)).rejects.toMatchObject({ code: 'ERR_FILE_NOT_FOUND' });
    const noWeights = freshDir();
    await makeTinyModel(noWeights);
    writeFileSync(join(noWeights, 'model.safetensors'), '');
    await expect(loadModel(noWeights)).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT' });
    const truncated = freshDir();
    await makeTinyModel(truncated);
    truncateSync(join(truncated, 'model.safetensors'), statSync(join(truncated, 'model.safetensors')).size - 100);
    await expect(loadModel(truncated)).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/truncated/) });
    const contradicting = freshDir();
    await makeTinyModel(contradicting);
    const config = JSON.parse(readFileSync(join(contradicting, 'config.json'), 'utf8'));
    writeFileSync(join(contradicting, 'config.json'), JSON.stringify({ ...config, intermediate_size: 100 }));
    await expect(loadModel(contradicting)).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/mlp.gate_proj.weight has shape/) });
    writeFileSync(join(contradicting, 'config.json'), JSON.stringify({ ...config, model_type: 'gpt2' }));
    await expect(loadModel(contradicting)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_MODEL' });
  });
});

describe('half-precision conversions', () => {
  it('are exact on representable values and round to nearest even', () => {
    for (const value of [0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8]) expect(f16ToF32(f32ToF16(value))).toBe(value);
    expect(f16ToF32(f32ToF16(1 + 2 ** -11))).toBe(1); // a tie rounds to the even mantissa
    expect(f16ToF32(f32ToF16(1e6))).toBe(Infinity);
    for (const value of [0, 1, -3.140625, 2 ** 100]) expect(bf16ToF32(f32ToBf16(value))).toBe(value);
    expect(bf16ToF32(f32ToBf16(1 + 2 ** -8))).toBe(1);
  });
});
