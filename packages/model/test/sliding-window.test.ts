import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate, loadModel, makeTinyModel, parseModelConfig, layerWindow, type LoadedModel } from '../src/index.js';
import { monolithicLogits } from './monolithic-reference.js';

const root = mkdtempSync(join(tmpdir(), 'seqpar-window-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// A window of 16 over a 53-token prompt and 8 new tokens: prefill and decode both see far less than the context.
const WINDOW = 16;
const prompt = Array.from({ length: 53 }, (_, i) => (i * 37 + 11) % 300);
let mistral: LoadedModel;
let qwen: LoadedModel;

beforeAll(async () => {
  await makeTinyModel(join(root, 'mistral'), { layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 300, seed: 8, modelType: 'mistral', slidingWindow: WINDOW });
  await makeTinyModel(join(root, 'qwen2'), { layers: 2, hidden: 48, heads: 6, kvHeads: 2, vocab: 300, seed: 9, modelType: 'qwen2', slidingWindow: WINDOW });
  [mistral, qwen] = await Promise.all([loadModel(join(root, 'mistral')), loadModel(join(root, 'qwen2'))]);
});

function relativeError(a: Float32Array, b: Float32Array): number {
  let [diff, scale] = [0, 0];
  for (let i = 0; i < a.length; i++) [diff, scale] = [Math.max(diff, Math.abs(a[i]! - b[i]!)), Math.max(scale, Math.abs(b[i]!))];
  return diff / scale;
}

const argmaxOfRow = (logits: Float32Array, row: number, vocab: number): number => {
  const values = logits.subarray(row * vocab, (row + 1) * vocab);
  return values.indexOf(Math.max(...values));
};

describe('sliding-window models', () => {
  it('reads the window where Mistral and Qwen2 (use_sliding_window, from max_window_layers) apply it', () => {
    const base = { hidden_size: 8, num_attention_heads: 2, intermediate_size: 8, num_hidden_layers: 4, vocab_size: 10 };
    const mistralConfig = parseModelConfig({ ...base, model_type: 'mistral', sliding_window: 4096 }, 'm');
    expect([0, 3].map((layer) => layerWindow(mistralConfig, layer))).toEqual([4096, 4096]);
    expect(parseModelConfig({ ...base, model_type: 'mistral', sliding_window: null }, 'm').slidingWindow).toBeUndefined();
    const qwenConfig = parseModelConfig({ ...base, model_type: 'qwen2', sliding_window: 64, use_sliding_window: true, max_window_layers: 2 }, 'q');
    expect([0, 1, 2, 3].map((layer) => layerWindow(qwenConfig, layer))).toEqual([undefined, undefined, 64, 64]);
    expect(parseModelConfig({ ...base, model_type: 'qwen2', sliding_window: 64, use_sliding_window: false }, 'q').slidingWindow).toBeUndefined();
  });

  it.each([
    ['single', 1],
    ['zigzag', 2],
    ['striped', 3],
    ['ring', 2],
    ['token-ring', 2],
    ['ulysses', 2],
  ] as const)('%s on %i worker(s): prefill logits and greedy tokens match the monolithic windowed reference', async (strategy, workers) => {
    for (const model of [mistral, qwen]) {
      const run = await generate(model, prompt, { strategy, workers, maxNewTokens: 8, allLogits: true, greedy: true });
      const reference = await monolithicLogits(model, prompt);
      expect(relativeError(run.promptLogits!.data, reference)).toBeLessThanOrEqual(1e-4);
      // Each greedy token is the monolithic model's argmax after the prompt and the tokens before it: decode over
      // the rolling window cache gives what a full recomputation with the window gives.
      const context = [...prompt, ...run.tokens.slice(0, -1)];
      const full = await monolithicLogits(model, context);
      const vocab = model.config.vocabSize;
      expect(run.tokens).toEqual(run.tokens.map((_, i) => argmaxOfRow(full, prompt.length - 1 + i, vocab)));
    }
  });

  it("keeps at most the window in each rank's cache", async () => {
    const run = await generate(mistral, prompt, { strategy: 'zigzag', workers: 2, maxNewTokens: 4, greedy: true });
    const { numLayers, numKvHeads, headDim } = mistral.config;
    const windowMb = (numLayers * WINDOW * (2 * numKvHeads * headDim * 4 + 4)) / 2 ** 20;
    for (const mb of run.kvCacheMb) expect(mb).toBeLessThanOrEqual(windowMb);
  });
});
