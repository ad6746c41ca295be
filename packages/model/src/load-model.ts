import { readModelConfig, type ModelConfig } from './config.js';
import { assembleWeights, readModelTensors, type ModelWeights } from './weights.js';

export interface LoadedModel {
  readonly dir: string;
  readonly config: ModelConfig;
  readonly weights: ModelWeights;
}

/** Reads a Hugging Face model directory: config.json plus its safetensors weights, checked against each other. */
export async function loadModel(dir: string): Promise<LoadedModel> {
  const config = await readModelConfig(dir);
  const weights = assembleWeights(await readModelTensors(dir), config);
  return { dir, config, weights };
}
