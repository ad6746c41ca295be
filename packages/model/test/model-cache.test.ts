import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RankRecorder, type Tensor } from '@seqpar/core';
import { ComputeThread, createAttentionKernel, type AttentionKernel } from '@seqpar/kernels';
import { createInprocGroup } from '@seqpar/transport';
import { generate, generateOnRank, loadModel, makeTinyModel, ModelCache, type GenerateSummary, type RankModel } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'seqpar-model-cache-'));
const prompt = Array.from({ length: 29 }, (_, i) => (i * 37) % 300);
const shape = { layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 300 } as const;
const options = { strategy: 'zigzag', maxNewTokens: 6, greedy: true, allLogits: true } as const;
let threads: ComputeThread[];
let kernels: AttentionKernel[];

beforeAll(async () => {
  threads = await Promise.all([0, 1].map(() => ComputeThread.start({ threads: 1 })));
  kernels = await Promise.all(threads.map((thread) => createAttentionKernel({ threads: 1 }, thread)));
});
afterAll(async () => {
  await Promise.all(threads.map((thread) => thread.close()));
  rmSync(root, { recursive: true, force: true });
});

/** A generation on the long-lived threads (as a worker process runs one request after another), its model from `cache`. */
async function generateCached(cache: ModelCache, dir: string): Promise<{ tokens: number[]; logits: Float32Array }> {
  const transports = createInprocGroup(threads.length);
  const tokens: number[] = [];
  try {
    const results = await Promise.all(
      threads.map((thread, rank) =>
        cache.use(dir, thread, (model) => {
          const ctx = { rank, worldSize: threads.length, transport: transports[rank]!, tagPrefix: '', timeoutMs: 30_000, kernel: kernels[rank]!, recorder: new RankRecorder(rank) };
          return generateOnRank(ctx, model, Int32Array.from(prompt), options, { onToken: (token, index) => (tokens[index] = token) });
        }),
      ),
    );
    const logits = new Float32Array(prompt.length * shape.vocab);
    for (const { positions, logits: rows } of results) positions.forEach((p, i) => logits.set(rows!.data.subarray(i * shape.vocab, (i + 1) * shape.vocab), p * shape.vocab));
    return { tokens, logits };
  } finally {
    await Promise.all(transports.map((transport) => transport.close()));
  }
}

/** A generation in fresh threads on a model read just now: what the cache must agree with. */
async function fresh(dir: string): Promise<GenerateSummary> {
  return generate(await loadModel(dir), prompt, { ...options, workers: threads.length, execution: { threads: 1 } });
}

function expectSameRun(run: { tokens: number[]; logits: Float32Array }, reference: GenerateSummary): void {
  expect(run.tokens).toEqual(reference.tokens);
  const expected = reference.promptLogits!.data;
  const scale = Math.max(...Array.from(expected, Math.abs));
  expect(Math.max(...Array.from(run.logits, (x, i) => Math.abs(x - expected[i]!))) / scale).toBeLessThanOrEqual(1e-5);
}

/** The logits of one token through `model`: fails once the model's graphs are released. */
const oneToken = (model: RankModel): Promise<Tensor> => model.logits(model.embed([1]));

describe('ModelCache', () => {
  it('a model.safetensors overwritten in place is read again: the next generation is the new model, not a mix', async () => {
    const [dir, other] = [join(root, 'swap'), join(root, 'b')];
    await makeTinyModel(dir, { ...shape, seed: 1 });
    await makeTinyModel(other, { ...shape, seed: 2 });
    const [expectedA, expectedB] = [await fresh(dir), await fresh(other)];
    expect(expectedA.tokens).not.toEqual(expectedB.tokens);
    const cache = new ModelCache();
    expectSameRun(await generateCached(cache, dir), expectedA);
    expectSameRun(await generateCached(cache, dir), expectedA); // served from the cache

    const weights = join(dir, 'model.safetensors');
    const before = statSync(weights);
    writeFileSync(weights, readFileSync(join(other, 'model.safetensors')));
    expect(statSync(weights)).toMatchObject({ ino: before.ino, size: before.size }); // same file, same size: only its times changed
    expectSameRun(await generateCached(cache, dir), expectedB);
    expect(cache.size.models).toBe(1); // the replaced model was dropped, not kept beside
  });

  it('a rewritten shard of a sharded model is read again too', async () => {
    const [dir, other] = [join(root, 'sharded'), join(root, 'sharded-b')];
    await makeTinyModel(dir, { ...shape, seed: 3, shards: 3 });
    await makeTinyModel(other, { ...shape, seed: 4, shards: 3 });
    const cache = new ModelCache();
    expectSameRun(await generateCached(cache, dir), await fresh(dir));
    const shard = 'model-00002-of-00003.safetensors';
    writeFileSync(join(dir, shard), readFileSync(join(other, shard)));
    expectSameRun(await generateCached(cache, dir), await fresh(dir)); // the mix of both seeds, read as a whole
  });

  it('keeps at most maxModels models and releases the graphs of those it drops', async () => {
    const dirs = [0, 1, 2, 3].map((i) => join(root, `many-${i}`));
    for (const [i, dir] of dirs.entries()) await makeTinyModel(dir, { layers: 1, hidden: 32, heads: 2, kvHeads: 1, vocab: 260, seed: 10 + i });
    const cache = new ModelCache({ maxModels: 2 });
    const models: RankModel[] = [];
    for (const dir of dirs) {
      models.push(await cache.use(dir, threads[0]!, async (model) => (await oneToken(model), model)));
      expect(cache.size.models).toBeLessThanOrEqual(2);
    }
    expect(cache.size).toEqual({ models: 2, bytes: 2 * weightBytes(32, 260, 1) });
    for (const dropped of models.slice(0, 2)) await expect(oneToken(dropped)).rejects.toMatchObject({ code: 'ERR_KERNEL', message: expect.stringMatching(/no session/) });
    for (const kept of models.slice(2)) expect((await oneToken(kept)).shape).toEqual([1, 260]);

    const small = new ModelCache({ maxBytes: weightBytes(32, 260, 1) * 1.5 });
    for (const dir of dirs) await small.use(dir, threads[0]!, oneToken);
    expect(small.size.models).toBe(1);
  });

  it('a model in use stays loaded until its user is done, even when dropped meanwhile', async () => {
    const dirs = [0, 1].map((i) => join(root, `many-${i}`));
    const cache = new ModelCache({ maxModels: 1 });
    let held: RankModel | undefined;
    await cache.use(dirs[0]!, threads[0]!, async (model) => {
      held = model;
      await cache.use(dirs[1]!, threads[0]!, oneToken);
      expect((await oneToken(model)).shape).toEqual([1, 260]);
    });
    await cache.use(dirs[1]!, threads[0]!, oneToken);
    expect(cache.size.models).toBe(1);
    await expect(oneToken(held!)).rejects.toMatchObject({ code: 'ERR_KERNEL' });
  });

  it('does not keep a model that failed to read, and reads it again once it is fixed', async () => {
    const dir = join(root, 'broken');
    await makeTinyModel(dir, { layers: 1, hidden: 32, heads: 2, kvHeads: 1, vocab: 260 });
    const weights = join(dir, 'model.safetensors');
    const good = readFileSync(weights);
    writeFileSync(weights, good.subarray(0, good.length - 4));
    const cache = new ModelCache();
    await expect(cache.use(dir, threads[0]!, oneToken)).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT' });
    expect(cache.size.models).toBe(0);
    writeFileSync(weights, good);
    expect((await cache.use(dir, threads[0]!, oneToken)).shape).toEqual([1, 260]);
  });
});

/** Float32 bytes of a one-layer tiny model with untied embeddings (intermediate = 2 × hidden, 2 heads, 1 KV head). */
function weightBytes(hidden: number, vocab: number, kvHeads: number): number {
  const headDim = hidden / 2;
  const layer = 2 * hidden + 2 * hidden * hidden + 2 * kvHeads * headDim * hidden + 3 * 2 * hidden * hidden;
  return 4 * (2 * vocab * hidden + hidden + layer);
}
