import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../src/index.js';

const valid = {
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 128,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_hidden_layers: 2,
  vocab_size: 300,
  bos_token_id: 256,
  eos_token_id: [257, 1],
};

const parse = (changes: Record<string, unknown>) => parseModelConfig({ ...valid, ...changes }, 'm/config.json');
const rejects = (changes: Record<string, unknown>, message: RegExp) =>
  expect(() => parse(changes)).toThrow(expect.objectContaining({ code: 'ERR_MODEL_CONFIG', message: expect.stringMatching(message) }));

describe('config.json checks', () => {
  it('reads a valid config with its defaults', () => {
    expect(parse({})).toMatchObject({ headDim: 16, numKvHeads: 2, rmsNormEps: 1e-6, ropeTheta: 10000, bosTokenId: 256, eosTokenIds: [257, 1], maxPositionEmbeddings: 2048 });
    expect(parse({ bos_token_id: null, eos_token_id: 5 })).toMatchObject({ eosTokenIds: [5] });
  });

  it('names a missing required field', () => {
    for (const key of ['hidden_size', 'intermediate_size', 'num_attention_heads', 'num_hidden_layers', 'vocab_size']) {
      rejects({ [key]: undefined }, new RegExp(`^m/config.json: ${key} is missing`));
    }
  });

  it('rejects head sizes that rotary embeddings and the projections cannot use', () => {
    rejects({ hidden_size: 66 }, /hidden_size \(66\) must be a multiple of num_attention_heads \(4\) when head_dim is not given/);
    rejects({ head_dim: 15 }, /head_dim \(15\) must be even/);
    rejects({ num_key_value_heads: 3 }, /multiple of num_key_value_heads/);
  });

  it('rejects non-finite numbers and token ids outside the vocabulary', () => {
    rejects({ rope_theta: Infinity }, /rope_theta must be a finite positive number/);
    rejects({ rms_norm_eps: -1 }, /rms_norm_eps must be a finite positive number/);
    rejects({ eos_token_id: [257, 300] }, /eos_token_id 300 is not a token id of the vocabulary \(0..299\)/);
    rejects({ bos_token_id: 'x' }, /bos_token_id "x" is not a token id/);
  });
});
