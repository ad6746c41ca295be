import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generate, loadModel } from '@seqpar/model';
import type { StrategyName } from '@seqpar/strategies';
import type { ClusterGenerateOptions } from '../src/api/cluster-generate.js';
import { streamedTokens, useModelCluster } from './model-cluster.js';

const dir = mkdtempSync(join(tmpdir(), 'seqpar-batch-'));
const promptOf = (length: number, salt: number) => Array.from({ length }, (_, i) => (i * 53 + salt * 17) % 290);

/** Requests of different strategies, prompt lengths and token budgets, all in flight at once. */
const requests: Array<{ prompt: number[]; options: ClusterGenerateOptions }> = [
  { prompt: promptOf(37, 1), options: { strategy: 'single', maxNewTokens: 9, greedy: true, ignoreEos: true } },
  { prompt: promptOf(80, 2), options: { strategy: 'ring', maxNewTokens: 6, greedy: true, ignoreEos: true } },
  { prompt: promptOf(5, 3), options: { strategy: 'single', maxNewTokens: 12, greedy: true, ignoreEos: true } },
  { prompt: promptOf(61, 4), options: { strategy: 'zigzag', maxNewTokens: 8, greedy: true, ignoreEos: true } },
  { prompt: promptOf(23, 5), options: { strategy: 'single', maxNewTokens: 7, temperature: 0.8, topP: 0.9, seed: 11, ignoreEos: true } },
  { prompt: promptOf(44, 6), options: { strategy: 'ring', maxNewTokens: 10, temperature: 1.2, seed: 5, ignoreEos: true } },
];

describe('continuous batching of cluster.generate (worker processes, shm)', () => {
  const cluster = useModelCluster(
    dir,
    { layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 300, seed: 3 },
    { workers: 2, transport: 'shm', healthTimeoutMs: 2000, requestTimeoutMs: 60_000 },
  );

  it('concurrent generations give each one its tokens alone, token for token (greedy and seeded sampling)', async () => {
    const model = await loadModel(dir);
    const alone: number[][] = [];
    for (const { prompt, options } of requests) {
      const degree = options.strategy === 'single' ? 1 : 2;
      const local = await generate(model, prompt, { ...options, workers: degree });
      alone.push(local.tokens);
      expect(await streamedTokens(cluster().generate(dir, prompt, options))).toEqual(local.tokens);
    }
    const together = await Promise.all(requests.map(({ prompt, options }) => streamedTokens(cluster().generate(dir, prompt, options))));
    expect(together).toEqual(alone);
  });

  it('a prefill cut into 64-row compute calls (a server’s prefill chunk) gives the same tokens; a chunk off the 64-row grid is refused', async () => {
    const model = await loadModel(dir);
    const chunked = [
      { prompt: promptOf(301, 7), options: { strategy: 'single', maxNewTokens: 5, greedy: true, ignoreEos: true, prefillChunk: 64 } },
      { prompt: promptOf(333, 8), options: { strategy: 'zigzag', maxNewTokens: 5, greedy: true, ignoreEos: true, prefillChunk: 128 } },
    ] satisfies Array<{ prompt: number[]; options: ClusterGenerateOptions }>;
    const alone = await Promise.all(
      chunked.map(async ({ prompt, options }) => (await generate(model, prompt, { ...options, workers: options.strategy === 'single' ? 1 : 2 })).tokens),
    );
    expect(await Promise.all(chunked.map(({ prompt, options }) => streamedTokens(cluster().generate(dir, prompt, options))))).toEqual(alone);
    const refused = streamedTokens(cluster().generate(dir, promptOf(10, 1), { strategy: 'single', maxNewTokens: 1, prefillChunk: 100 }));
    await expect(refused).rejects.toMatchObject({ code: 'ERR_USAGE', message: expect.stringContaining('try 64 or 128') });
  });

  it('an aborted generation ends alone: the others keep their tokens; a request for prompt logits waits for the batch and runs', async () => {
    const stop = new AbortController();
    const long: ClusterGenerateOptions = { strategy: 'ring' as StrategyName, maxNewTokens: 40, greedy: true, ignoreEos: true };
    const expected = await streamedTokens(cluster().generate(dir, promptOf(30, 9), long));
    const aborted = streamedTokens(cluster().generate(dir, promptOf(50, 8), { ...long, signal: stop.signal })).then(
      () => undefined,
      (error: unknown) => error,
    );
    const kept = streamedTokens(cluster().generate(dir, promptOf(30, 9), long));
    const logits = cluster().generate(dir, promptOf(12, 1), { strategy: 'ring', maxNewTokens: 2, greedy: true, allLogits: true });
    setTimeout(() => stop.abort(), 50);
    expect(await aborted).toMatchObject({ code: 'ERR_ABORTED' });
    expect(await kept).toEqual(expected);
    const summary = await (async () => {
      for (;;) {
        const next = await logits.next();
        if (next.done) return next.value;
      }
    })();
    expect(summary.promptLogits?.shape).toEqual([12, 300]);
  });

  it('a short request sent while a long prompt prefills gets all its tokens before the long prompt its first', async () => {
    const events: string[] = [];
    let halfway!: () => void;
    const prefilling = new Promise<void>((resolve) => (halfway = resolve));
    const long = (async () => {
      // Rank 0 reports each prefill layer it finished: after the first of two, the prefill is under way.
      const run = cluster().generate(dir, promptOf(8000, 12), { strategy: 'ring', maxNewTokens: 2, greedy: true, ignoreEos: true, onPrefillProgress: () => halfway() });
      await run.next();
      events.push('long: first token');
      while (!(await run.next()).done);
    })();
    await prefilling;
    await streamedTokens(cluster().generate(dir, promptOf(16, 13), { strategy: 'single', maxNewTokens: 4, greedy: true, ignoreEos: true }));
    events.push('short: done');
    await long;
    expect(events).toEqual(['short: done', 'long: first token']);
  });
});
