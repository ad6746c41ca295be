import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '@seqpar/core';
import type { StrategyName } from '@seqpar/strategies';
import { generate, loadModel, makeTinyModel, type LoadedModel } from '../src/index.js';
import { monolithicLogits } from './monolithic-reference.js';

const root = mkdtempSync(join(tmpdir(), 'seqpar-gen-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let model: LoadedModel;
let qwen: LoadedModel;
/** As many KV heads as query heads, so Ulysses can run on 4 workers too. */
let mha: LoadedModel;
const prompt = Array.from(
  { length: 53 },
  (
    (random) => () =>
      Math.floor(random() * 300)
  )(seededRandom(5)),
);

beforeAll(async () => {
  await makeTinyModel(join(root, 'llama'), { layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 300, seed: 3 });
  await makeTinyModel(join(root, 'qwen2'), { layers: 2, hidden: 48, heads: 6, kvHeads: 2, vocab: 300, seed: 4, modelType: 'qwen2' });
  model = await loadModel(join(root, 'llama'));
  await makeTinyModel(join(root, 'mha'), { layers: 2, hidden: 64, heads: 4, kvHeads: 4, vocab: 300, seed: 6 });
  qwen = await loadModel(join(root, 'qwen2'));
  mha = await loadModel(join(root, 'mha'));
});

/** Max |a - b| relative to the largest |b|: the logits' scale. */
function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

describe('sequence-parallel prefill and sharded-KV decode', () => {
  it('single-worker prefill logits agree with one monolithic ONNX graph of the whole model', async () => {
    for (const m of [model, qwen]) {
      const single = await generate(m, prompt, { strategy: 'single', workers: 1, maxNewTokens: 1, allLogits: true });
      expect(relativeError(single.promptLogits!.data, await monolithicLogits(m, prompt))).toBeLessThanOrEqual(1e-4);
    }
  });

  const strategies: StrategyName[] = ['ring', 'striped', 'zigzag', 'token-ring', 'ulysses'];
  it.each(strategies)('%s with N = 1, 2, 4 matches single-worker logits and greedy tokens', async (strategy) => {
    const m = strategy === 'ulysses' ? mha : model; // Ulysses refuses a degree beyond the KV heads
    const single = await generate(m, prompt, { strategy: 'single', workers: 1, maxNewTokens: 6, allLogits: true, greedy: true });
    for (const workers of [1, 2, 4]) {
      const sharded = await generate(m, prompt, { strategy, workers, maxNewTokens: 6, allLogits: true, greedy: true });
      expect(relativeError(sharded.promptLogits!.data, single.promptLogits!.data), `${strategy} N=${workers}`).toBeLessThanOrEqual(1e-4);
      expect(sharded.tokens).toEqual(single.tokens);
    }
  });

  it('a prompt long enough to cut kernel calls and layer graphs into pieces (2500 tokens) still matches the monolithic graph', async () => {
    const long = Array.from({ length: 2500 }, (_, i) => (i * 7919) % 300);
    const reference = await monolithicLogits(model, long);
    for (const [strategy, workers] of [
      ['single', 1],
      ['zigzag', 2],
    ] as const) {
      const run = await generate(model, long, { strategy, workers, maxNewTokens: 2, allLogits: true, greedy: true });
      expect(relativeError(run.promptLogits!.data, reference), `${strategy} N=${workers}`).toBeLessThanOrEqual(1e-4);
    }
  });

  it('seeded sampling reproduces, and a prompt shorter than the worker count works', async () => {
    const options = { strategy: 'striped' as const, workers: 3, maxNewTokens: 5, temperature: 0.8, topP: 0.9, seed: 42 };
    const first = await generate(model, prompt, options);
    expect((await generate(model, prompt, options)).tokens).toEqual(first.tokens);
    const short = await generate(model, [7, 8], { strategy: 'zigzag', workers: 3, maxNewTokens: 3, greedy: true });
    expect(short.tokens).toEqual((await generate(model, [7, 8], { strategy: 'single', workers: 1, maxNewTokens: 3, greedy: true })).tokens);
  });

  it('stops at an end-of-sequence token unless told to ignore it', async () => {
    const first = (await generate(model, prompt, { strategy: 'single', workers: 1, maxNewTokens: 1, greedy: true })).tokens[0]!;
    const eosFirst = { ...model, config: { ...model.config, eosTokenIds: [first] } };
    const options = { strategy: 'zigzag' as const, workers: 2, maxNewTokens: 4, greedy: true };
    expect((await generate(eosFirst, prompt, options)).tokens).toEqual([first]);
    const ignoring = await generate(eosFirst, prompt, { ...options, ignoreEos: true });
    expect(ignoring.tokens).toEqual((await generate(model, prompt, options)).tokens);
    expect(ignoring.tokens).toHaveLength(4);
  });

  it('rejects an empty prompt, unknown ids and prompts past max_position_embeddings', async () => {
    await expect(generate(model, [], { strategy: 'ring', workers: 2, maxNewTokens: 2 })).rejects.toMatchObject({ code: 'ERR_PROMPT', exitCode: 2 });
    await expect(generate(model, [1, 300], { strategy: 'ring', workers: 2, maxNewTokens: 2 })).rejects.toMatchObject({ code: 'ERR_PROMPT' });
    await expect(generate(model, prompt, { strategy: 'ring', workers: 2, maxNewTokens: 131072 })).rejects.toMatchObject({
      code: 'ERR_PROMPT',
      message: expect.stringMatching(/max_position_embeddings/),
    });
    await makeTinyModel(join(root, 'short'), { maxPositionEmbeddings: 32 });
    const short = await loadModel(join(root, 'short'));
    await expect(generate(short, prompt.slice(0, 40), { strategy: 'zigzag', workers: 2, maxNewTokens: 1 })).rejects.toMatchObject({
      code: 'ERR_PROMPT',
      exitCode: 2,
      message: expect.stringMatching(/prompt \(40 tokens\).*max_position_embeddings \(32\)/),
    });
  });
});
