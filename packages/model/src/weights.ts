import { SeqparError, type Tensor } from '@seqpar/core';
import type { ModelConfig } from './config.js';
import { weightFiles } from './model-files.js';
import { readSafetensorsFile } from './safetensors.js';

export interface LayerWeights {
  readonly inputNorm: Tensor;
  readonly qProj: Tensor;
  readonly kProj: Tensor;
  readonly vProj: Tensor;
  readonly oProj: Tensor;
  readonly qBias?: Tensor;
  readonly kBias?: Tensor;
  readonly vBias?: Tensor;
  readonly postNorm: Tensor;
  readonly gateProj: Tensor;
  readonly upProj: Tensor;
  readonly downProj: Tensor;
}

/** LlamaForCausalLM's weights in float32; projections keep Hugging Face's [out, in] layout. */
export interface ModelWeights {
  readonly embedTokens: Tensor;
  readonly layers: readonly LayerWeights[];
  readonly finalNorm: Tensor;
  /** The embedding matrix itself when the config ties them. */
  readonly lmHead: Tensor;
}

/** Reads model.safetensors, or every shard named by model.safetensors.index.json. */
export async function readModelTensors(dir: string): Promise<Map<string, Tensor>> {
  const tensors = new Map<string, Tensor>();
  for (const shard of (await weightFiles(dir)).shards) {
    for (const [name, tensor] of await readSafetensorsFile(shard)) {
      if (tensors.has(name)) throw new SeqparError('ERR_MODEL_FORMAT', `${shard}: tensor ${name} is also in an earlier shard`);
      tensors.set(name, tensor);
    }
  }
  return tensors;
}

/** Picks and shape-checks every weight the config implies; a missing or misshapen tensor is ERR_MODEL_FORMAT. */
export function assembleWeights(tensors: ReadonlyMap<string, Tensor>, config: ModelConfig): ModelWeights {
  const { hiddenSize: h, intermediateSize: inter, numHeads, numKvHeads, headDim, vocabSize } = config;
  const take = (name: string, shape: number[]): Tensor => {
    const tensor = tensors.get(name);
    if (!tensor) throw new SeqparError('ERR_MODEL_FORMAT', `weight ${name} is missing`);
    if (tensor.shape.length !== shape.length || tensor.shape.some((size, i) => size !== shape[i])) {
      throw new SeqparError('ERR_MODEL_FORMAT', `weight ${name} has shape [${tensor.shape}] but config.json implies [${shape}]`);
    }
    return tensor;
  };
  const layers = Array.from({ length: config.numLayers }, (_, i): LayerWeights => {
    const p = `model.layers.${i}.`;
    const bias = (name: string, size: number) => (config.attentionBias ? { [name]: take(`${p}self_attn.${name[0]}_proj.bias`, [size]) } : {});
    return {
      inputNorm: take(`${p}input_layernorm.weight`, [h]),
      qProj: take(`${p}self_attn.q_proj.weight`, [numHeads * headDim, h]),
      kProj: take(`${p}self_attn.k_proj.weight`, [numKvHeads * headDim, h]),
      vProj: take(`${p}self_attn.v_proj.weight`, [numKvHeads * headDim, h]),
      oProj: take(`${p}self_attn.o_proj.weight`, [h, numHeads * headDim]),
      ...bias('qBias', numHeads * headDim),
      ...bias('kBias', numKvHeads * headDim),
      ...bias('vBias', numKvHeads * headDim),
      postNorm: take(`${p}post_attention_layernorm.weight`, [h]),
      gateProj: take(`${p}mlp.gate_proj.weight`, [inter, h]),
      upProj: take(`${p}mlp.up_proj.weight`, [inter, h]),
      downProj: take(`${p}mlp.down_proj.weight`, [h, inter]),
    };
  });
  const embedTokens = take('model.embed_tokens.weight', [vocabSize, h]);
  return {
    embedTokens,
    layers,
    finalNorm: take('model.norm.weight', [h]),
    lmHead: config.tieWordEmbeddings ? embedTokens : take('lm_head.weight', [vocabSize, h]),
  };
}
