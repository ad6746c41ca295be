import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RankRecorder, seededRandom, type Tensor } from '@seqpar/core';
import { ComputeThread, createAttentionKernel } from '@seqpar/kernels';
import type { StrategyName } from '@seqpar/strategies';
import { createInprocGroup } from '@seqpar/transport';
import { decodeRank, loadModel, makeTinyModel, prefillRank, RankModel, releaseRankState, type LoadedModel } from '../src/index.js';
import { monolithicLogits } from './monolithic-reference.js';

const root = mkdtempSync(join(tmpdir(), 'seqpar-decode-'));
let model: LoadedModel;
beforeAll(async () => {
  await makeTinyModel(join(root, 'm'), { layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 300, seed: 9 });
  model = await loadModel(join(root, 'm'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Logits of `tokens` decoded one by one after `prompt` on `n` in-process ranks (cache sharded, pass-Q), by step. */
async function decodeLogits(strategy: StrategyName, n: number, prompt: number[], tokens: number[]): Promise<Tensor[]> {
  const threads = await Promise.all(Array.from({ length: n }, () => ComputeThread.start({ threads: 1 })));
  const transports = createInprocGroup(n);
  try {
    return await Promise.all(
      threads.map(async (thread, rank) => {
        const ctx = {
          rank,
          worldSize: n,
          transport: transports[rank]!,
          tagPrefix: '',
          timeoutMs: 30_000,
          kernel: await createAttentionKernel({}, thread),
          recorder: new RankRecorder(rank),
        };
        const rankModel = await RankModel.load(model.config, model.weights, thread, 'm');
        // Reserve one row fewer than the tokens need, so the cache also grows mid-decode.
        const state = await prefillRank(ctx, rankModel, strategy, Int32Array.from(prompt), false, Math.max(0, Math.ceil(tokens.length / n) - 1));
        const logits: Tensor[] = [];
        for (const [step, token] of tokens.entries()) {
          const position = prompt.length + step;
          const owned = await decodeRank(ctx, rankModel, state, step, token, position, position % n);
          if (owned) logits[step] = owned;
        }
        await releaseRankState(state);
        return logits;
      }),
    ).then((perRank) => tokens.map((_, step) => perRank.find((logits) => logits[step])![step]!));
  } finally {
    await Promise.all(transports.map((t) => t.close()));
    await Promise.all(threads.map((t) => t.close()));
  }
}

describe('decode over a KV cache kept on the compute threads', () => {
  it.each<[StrategyName, number]>([
    ['single', 1],
    ['zigzag', 2],
    ['striped', 3],
  ])('%s, N = %i: each step’s logits equal the monolithic graph over prompt + decoded tokens', async (strategy, n) => {
    const random = seededRandom(n);
    const prompt = Array.from({ length: 41 }, () => Math.floor(random() * 300));
    const tokens = [17, 250, 3, 99, 140];
    const reference = await monolithicLogits(model, [...prompt, ...tokens]);
    const vocab = model.config.vocabSize;
    const steps = await decodeLogits(strategy, n, prompt, tokens);
    steps.forEach((logits, step) => {
      const expected = reference.subarray((prompt.length + step) * vocab, (prompt.length + step + 1) * vocab);
      const scale = expected.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      const error = logits.data.reduce((m, x, i) => Math.max(m, Math.abs(x - expected[i]!)), 0);
      expect(error / scale, `step ${step}`).toBeLessThanOrEqual(1e-4);
    });
  });
});
