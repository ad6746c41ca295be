import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SeqparError } from '@seqpar/core';

export const MODEL_TYPES = ['llama', 'mistral', 'qwen2'] as const;
export type ModelType = (typeof MODEL_TYPES)[number];

/** The parts of Hugging Face's config.json that LlamaForCausalLM semantics need, in our names. */
export interface ModelConfig {
  readonly modelType: ModelType;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly numLayers: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly vocabSize: number;
  readonly tieWordEmbeddings: boolean;
  readonly maxPositionEmbeddings: number;
  /** qwen2 puts biases on the q, k and v projections. */
  readonly attentionBias: boolean;
  /**
   * Sliding-window attention: layers from `fromLayer` on let token i see only tokens i-W < j <= i. Mistral's
   * `sliding_window` (every layer); Qwen2's with `use_sliding_window`, from layer `max_window_layers` on.
   */
  readonly slidingWindow?: { readonly size: number; readonly fromLayer: number };
  readonly bosTokenId?: number;
  readonly eosTokenIds: readonly number[];
}

/** Parses a config.json object; `source` names it in errors. */
export function parseModelConfig(raw: Record<string, unknown>, source: string): ModelConfig {
  const fail = (why: string): never => {
    throw new SeqparError('ERR_MODEL_CONFIG', `${source}: ${why}`);
  };
  const modelType = raw['model_type'];
  if (!MODEL_TYPES.includes(modelType as ModelType)) {
    throw new SeqparError('ERR_UNSUPPORTED_MODEL', `${source}: model_type ${JSON.stringify(modelType)} is not supported (supported: ${MODEL_TYPES.join(', ')})`);
  }
  const int = (key: string, fallback?: number): number => {
    const value = raw[key] ?? fallback;
    if (value === undefined) return fail(`${key} is missing (a positive integer)`);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) return fail(`${key} must be a positive integer, got ${JSON.stringify(value)}`);
    return value;
  };
  const num = (key: string, fallback: number): number => {
    const value = raw[key] ?? fallback;
    // JSON.parse reads 1e999 as Infinity.
    if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) return fail(`${key} must be a finite positive number, got ${JSON.stringify(value)}`);
    return value;
  };
  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) fail(`num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  if ((raw['head_dim'] ?? null) === null && hiddenSize % numHeads !== 0)
    fail(`hidden_size (${hiddenSize}) must be a multiple of num_attention_heads (${numHeads}) when head_dim is not given`);
  const headDim = int('head_dim', hiddenSize / numHeads);
  // Rotate-half RoPE splits every head in two halves.
  if (headDim % 2 !== 0) fail(`head_dim (${headDim}) must be even for rotary embeddings`);
  const vocabSize = int('vocab_size');
  const tokenId = (key: string, value: unknown): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= vocabSize)
      return fail(`${key} ${JSON.stringify(value)} is not a token id of the vocabulary (0..${vocabSize - 1})`);
    return value;
  };
  const eos = raw['eos_token_id'];
  const bos = raw['bos_token_id'];
  return {
    modelType: modelType as ModelType,
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numHeads,
    numKvHeads,
    numLayers: int('num_hidden_layers'),
    headDim,
    rmsNormEps: num('rms_norm_eps', 1e-6),
    ropeTheta: num('rope_theta', 10000),
    vocabSize,
    tieWordEmbeddings: raw['tie_word_embeddings'] === true,
    maxPositionEmbeddings: int('max_position_embeddings', 2048),
    attentionBias: modelType === 'qwen2' || raw['attention_bias'] === true,
    ...slidingWindowOf(modelType as ModelType, raw, int, fail),
    ...(bos === undefined || bos === null ? {} : { bosTokenId: tokenId('bos_token_id', bos) }),
    eosTokenIds: eos === undefined || eos === null ? [] : Array.isArray(eos) ? eos.map((id) => tokenId('eos_token_id', id)) : [tokenId('eos_token_id', eos)],
  };
}

/** A window only where the model type applies it: Mistral always, Qwen2 when `use_sliding_window` says so. */
function slidingWindowOf(modelType: ModelType, raw: Record<string, unknown>, int: (key: string) => number, fail: (why: string) => never): Pick<ModelConfig, 'slidingWindow'> {
  const windowed = (modelType === 'mistral' || (modelType === 'qwen2' && raw['use_sliding_window'] === true)) && (raw['sliding_window'] ?? null) !== null;
  if (!windowed) return {};
  const fromLayer = modelType === 'qwen2' ? (raw['max_window_layers'] ?? 28) : 0;
  if (typeof fromLayer !== 'number' || !Number.isInteger(fromLayer) || fromLayer < 0) fail(`max_window_layers must be a whole number >= 0, got ${JSON.stringify(fromLayer)}`);
  return { slidingWindow: { size: int('sliding_window'), fromLayer: fromLayer as number } };
}

/** The sliding window of `layer`, or undefined where it attends to the whole causal prefix. */
export function layerWindow(config: ModelConfig, layer: number): number | undefined {
  return config.slidingWindow && layer >= config.slidingWindow.fromLayer ? config.slidingWindow.size : undefined;
}

export async function readModelConfig(dir: string): Promise<ModelConfig> {
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new SeqparError('ERR_FILE_NOT_FOUND', `no model at ${dir}: cannot read config.json`, { cause: error });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new SeqparError('ERR_MODEL_CONFIG', `${path} is not valid JSON`);
  }
  if (typeof raw !== 'object' || raw === null) throw new SeqparError('ERR_MODEL_CONFIG', `${path} must hold a JSON object`);
  return parseModelConfig(raw as Record<string, unknown>, path);
}
