import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generate, loadModel, makeTinyModel } from '@seqpar/model';
import { createCluster } from '../src/api/cluster.js';

const root = mkdtempSync(join(tmpdir(), 'seqpar-model-swap-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('cluster.generate after a model file is replaced in place', () => {
  it('serves the new weights, the same tokens as a fresh run on them', async () => {
    const [dir, other] = [join(root, 'a'), join(root, 'b')];
    const shape = { layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 300 } as const;
    await makeTinyModel(dir, { ...shape, seed: 1 });
    await makeTinyModel(other, { ...shape, seed: 2 });
    const prompt = Array.from({ length: 31 }, (_, i) => (i * 41) % 300);
    const options = { strategy: 'zigzag', maxNewTokens: 6, greedy: true } as const;
    const expected = async (model: string) => (await generate(await loadModel(model), prompt, { ...options, workers: 2 })).tokens;
    const cluster = await createCluster({ workers: 2 });
    try {
      const run = async () => {
        const tokens: number[] = [];
        for await (const { token } of cluster.generate(dir, prompt, options)) tokens.push(token);
        return tokens;
      };
      const [tokensA, tokensB] = [await expected(dir), await expected(other)];
      expect(tokensA).not.toEqual(tokensB);
      expect(await run()).toEqual(tokensA);
      // Same config, same file size: only the file's times say it changed.
      writeFileSync(join(dir, 'model.safetensors'), readFileSync(join(other, 'model.safetensors')));
      expect(await run()).toEqual(tokensB);
    } finally {
      await cluster.close();
    }
  });
});
