import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomTensor, seededRandom } from '@seqpar/core';
import { makeTinyModel } from '@seqpar/model';
import { createCluster, type Cluster } from '../src/api/cluster.js';

const MODEL = { layers: 4, hidden: 256, heads: 8, kvHeads: 2, vocab: 512, seed: 1 };
const HEAD_DIM = MODEL.hidden / MODEL.heads;
/**
 * What a prompt token's own tensors weigh on a rank: its x, q, k, v and attention output in flight, and its K/V
 * rows in every layer's cache.
 */
const TOKEN_BYTES = 4 * (2 * MODEL.hidden + 2 * MODEL.heads * HEAD_DIM + 2 * MODEL.kvHeads * HEAD_DIM) + MODEL.layers * 2 * MODEL.kvHeads * HEAD_DIM * 4;
/**
 * Each layer makes new arrays for those tensors, freed when V8 gets to them, so a token's data is counted a few
 * times over. ORT arenas sized by the sequence (what the workspace budget removes) grew by ~70 KB per token here,
 * about 12 times TOKEN_BYTES.
 */
const COPIES = 6;

const dir = mkdtempSync(join(tmpdir(), 'seqpar-workspace-'));
let cluster: Cluster;
beforeAll(async () => {
  await makeTinyModel(dir, MODEL);
  cluster = await createCluster({ workers: 1, transport: 'ws', healthTimeoutMs: 30_000, requestTimeoutMs: 120_000 });
});
afterAll(async () => {
  await cluster?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function generationWorkspaceMb(length: number): Promise<number> {
  const random = seededRandom(length);
  const prompt = Array.from({ length }, () => Math.floor(random() * 256));
  const run = cluster.generate(dir, prompt, { strategy: 'single', maxNewTokens: 2, greedy: true, ignoreEos: true });
  for (;;) {
    const next = await run.next();
    if (next.done) return next.value.ranks[0]!.workspacePeakMb;
  }
}

describe("a rank's kernel workspace is bounded by its budget, not by the sequence", () => {
  it('grows from a 512- to an 8192-token prompt by the tokens’ own tensors, not by ORT arenas sized to the prompt', async () => {
    const short = await generationWorkspaceMb(512);
    const long = await generationWorkspaceMb(8192);
    console.log(`workspace: 512 tokens ${short.toFixed(0)} MB, 8192 tokens ${long.toFixed(0)} MB (tokens' tensors ${((TOKEN_BYTES * 7680) / 2 ** 20).toFixed(0)} MB)`);
    expect(short).toBeGreaterThan(0);
    expect(long - short).toBeLessThanOrEqual((COPIES * TOKEN_BYTES * (8192 - 512)) / 2 ** 20);
  }, 180_000);

  it('reports per request, not the largest request the worker ever served', async () => {
    const random = seededRandom(3);
    // The big request's q and out (32 MiB each) outweigh anything the worker served before, which it may still hold
    // in its heap (received buffers and results are reused), so its peak must rise above where it began.
    const [big, small] = [
      [8192, 32],
      [256, 4],
    ].map(
      ([s, heads]) =>
        [randomTensor([s!, heads!, 32], random), randomTensor([s!, 4, 32], random), randomTensor([s!, 4, 32], random)] as [
          ReturnType<typeof randomTensor>,
          ReturnType<typeof randomTensor>,
          ReturnType<typeof randomTensor>,
        ],
    );
    const first = await cluster.attention(...big!, { strategy: 'single', causal: true });
    const second = await cluster.attention(...small!, { strategy: 'single', causal: true });
    expect(second.stats.ranks[0]!.workspacePeakMb).toBeLessThan(first.stats.ranks[0]!.workspacePeakMb);
    expect(second.stats.ranks[0]!.peakRssMb).toBeGreaterThanOrEqual(first.stats.ranks[0]!.peakRssMb);
  }, 120_000);
});
