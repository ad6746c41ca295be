import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomTensor, seededRandom, UsageError, type Tensor } from '@seqpar/core';
import type { ModelType } from './config.js';
import { encodeSafetensors } from './safetensors.js';
import type { WeightDtype } from './safetensors-header.js';
import { byteLevelTokenizerJson } from './tokenizer.js';

export interface TinyModelOptions {
  readonly layers?: number;
  readonly hidden?: number;
  readonly heads?: number;
  readonly kvHeads?: number;
  readonly vocab?: number;
  readonly intermediate?: number;
  readonly seed?: number;
  readonly dtype?: WeightDtype;
  readonly modelType?: ModelType;
  readonly tieWordEmbeddings?: boolean;
  readonly maxPositionEmbeddings?: number;
  /** config.json's `sliding_window` (with `use_sliding_window` for qwen2, on every layer). */
  readonly slidingWindow?: number;
  /** Split the weights over this many safetensors files with an index, as large checkpoints ship. */
  readonly shards?: number;
}

/**
 * Writes a random Llama-family model in Hugging Face's layout (config.json, model.safetensors or shards with
 * model.safetensors.index.json, and a byte-level tokenizer.json). Weights are scaled by 1/sqrt(fan-in) so
 * activations stay in a sane range through many layers.
 */
export async function makeTinyModel(dir: string, options: TinyModelOptions = {}): Promise<void> {
  const layers = options.layers ?? 2;
  const hidden = options.hidden ?? 64;
  const heads = options.heads ?? 4;
  const kvHeads = options.kvHeads ?? 2;
  const vocab = options.vocab ?? 320;
  const intermediate = options.intermediate ?? hidden * 2;
  const modelType = options.modelType ?? 'llama';
  const tie = options.tieWordEmbeddings ?? false;
  if (hidden % heads !== 0) throw new UsageError(`hidden size (${hidden}) must be a multiple of heads (${heads})`);
  if (heads % kvHeads !== 0) throw new UsageError(`heads (${heads}) must be a multiple of kv heads (${kvHeads})`);
  const headDim = hidden / heads;
  const random = seededRandom(options.seed ?? 0);
  const matrix = (rows: number, cols: number): Tensor => randomTensor([rows, cols], random, 1 / Math.sqrt(cols));
  const norm = (size: number): Tensor => {
    const t = randomTensor([size], random, 0.1);
    for (let i = 0; i < size; i++) t.data[i]! += 1;
    return t;
  };
  const tensors = new Map<string, Tensor>([['model.embed_tokens.weight', randomTensor([vocab, hidden], random)]]);
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}.`;
    tensors.set(`${p}input_layernorm.weight`, norm(hidden));
    tensors.set(`${p}self_attn.q_proj.weight`, matrix(heads * headDim, hidden));
    tensors.set(`${p}self_attn.k_proj.weight`, matrix(kvHeads * headDim, hidden));
    tensors.set(`${p}self_attn.v_proj.weight`, matrix(kvHeads * headDim, hidden));
    if (modelType === 'qwen2') {
      tensors.set(`${p}self_attn.q_proj.bias`, randomTensor([heads * headDim], random, 0.1));
      tensors.set(`${p}self_attn.k_proj.bias`, randomTensor([kvHeads * headDim], random, 0.1));
      tensors.set(`${p}self_attn.v_proj.bias`, randomTensor([kvHeads * headDim], random, 0.1));
    }
    tensors.set(`${p}self_attn.o_proj.weight`, matrix(hidden, heads * headDim));
    tensors.set(`${p}post_attention_layernorm.weight`, norm(hidden));
    tensors.set(`${p}mlp.gate_proj.weight`, matrix(intermediate, hidden));
    tensors.set(`${p}mlp.up_proj.weight`, matrix(intermediate, hidden));
    tensors.set(`${p}mlp.down_proj.weight`, matrix(hidden, intermediate));
  }
  tensors.set('model.norm.weight', norm(hidden));
  if (!tie) tensors.set('lm_head.weight', matrix(vocab, hidden));

  const { tokenizer, bosId, eosId } = byteLevelTokenizerJson(vocab);
  const config = {
    architectures: [modelType === 'qwen2' ? 'Qwen2ForCausalLM' : modelType === 'mistral' ? 'MistralForCausalLM' : 'LlamaForCausalLM'],
    model_type: modelType,
    hidden_size: hidden,
    intermediate_size: intermediate,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    num_hidden_layers: layers,
    head_dim: headDim,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    vocab_size: vocab,
    tie_word_embeddings: tie,
    max_position_embeddings: options.maxPositionEmbeddings ?? 131072,
    ...(options.slidingWindow === undefined ? {} : { sliding_window: options.slidingWindow, ...(modelType === 'qwen2' ? { use_sliding_window: true, max_window_layers: 0 } : {}) }),
    bos_token_id: bosId,
    eos_token_id: eosId,
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[options.dtype ?? 'F32'],
  };
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  await writeWeights(dir, tensors, options.dtype ?? 'F32', options.shards ?? 1);
}

async function writeWeights(dir: string, tensors: Map<string, Tensor>, dtype: WeightDtype, shards: number): Promise<void> {
  if (shards <= 1) {
    await writeFile(join(dir, 'model.safetensors'), encodeSafetensors(tensors, dtype));
    return;
  }
  const names = [...tensors.keys()];
  const weightMap: Record<string, string> = {};
  for (let shard = 0; shard < shards; shard++) {
    const file = `model-${String(shard + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = new Map(names.filter((_, i) => i % shards === shard).map((name) => [name, tensors.get(name)!]));
    for (const name of part.keys()) weightMap[name] = file;
    await writeFile(join(dir, file), encodeSafetensors(part, dtype));
  }
  await writeFile(join(dir, 'model.safetensors.index.json'), `${JSON.stringify({ metadata: {}, weight_map: weightMap }, null, 2)}\n`);
}
