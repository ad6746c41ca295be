import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generate, loadModel, type GenerateEvent, type GenerateSummary } from '@seqpar/model';
import type { StrategyName } from '@seqpar/strategies';
import { createCluster } from '../src/api/cluster.js';
import type { ClusterGenerateOptions } from '../src/api/cluster-generate.js';
import { expectAllGone, isAlive } from './processes.js';
import { useModelCluster } from './model-cluster.js';

const HEALTH_MS = 2000;
const dir = mkdtempSync(join(tmpdir(), 'seqpar-cluster-gen-'));
const prompt = Array.from({ length: 37 }, (_, i) => (i * 53) % 200);

/** Drains a generation: the tokens as they streamed and the summary it returned. */
async function drain(run: AsyncGenerator<GenerateEvent, GenerateSummary>, onToken?: (event: GenerateEvent) => void): Promise<{ streamed: number[]; summary: GenerateSummary }> {
  const streamed: number[] = [];
  for (;;) {
    const next = await run.next();
    if (next.done) return { streamed, summary: next.value };
    streamed.push(next.value.token);
    onToken?.(next.value);
  }
}

describe('cluster.generate on worker processes', () => {
  const cluster = useModelCluster(
    dir,
    { layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 300, seed: 3 },
    { workers: 2, transport: 'ws', healthTimeoutMs: HEALTH_MS, requestTimeoutMs: 30_000 },
  );

  it('gives the in-process tokens and prefill logits (1e-4 of their scale) for ring, zigzag and ulysses', async () => {
    const model = await loadModel(dir);
    const options = { maxNewTokens: 5, greedy: true, allLogits: true } as const;
    for (const strategy of ['ring', 'zigzag', 'ulysses'] satisfies StrategyName[]) {
      const local = await generate(model, prompt, { ...options, strategy, workers: 2 });
      const { streamed, summary } = await drain(cluster().generate(dir, prompt, { ...options, strategy }));
      expect(summary.tokens).toEqual(local.tokens);
      expect(streamed).toEqual(local.tokens);
      expect(summary).toMatchObject({ strategy, workers: 2 });
      expect(summary.ranks.map((rank) => rank.rank)).toEqual([0, 1]);
      expect(summary.kvCacheMb.every((mb) => mb > 0)).toBe(true);
      const expected = local.promptLogits!.data;
      const scale = Math.max(...Array.from(expected, Math.abs));
      const worst = Math.max(...Array.from(summary.promptLogits!.data, (x, i) => Math.abs(x - expected[i]!)));
      expect(worst / scale).toBeLessThanOrEqual(1e-4);
    }
  });

  it('runs the same on an inproc cluster (ranks in this process, one generation rank per executor worker)', async () => {
    const model = await loadModel(dir);
    const local = await generate(model, prompt, { strategy: 'token-ring', workers: 2, maxNewTokens: 4, greedy: true });
    const inproc = await createCluster({ workers: 2 });
    try {
      expect((await drain(inproc.generate(dir, prompt, { strategy: 'token-ring', maxNewTokens: 4, greedy: true }))).summary.tokens).toEqual(local.tokens);
    } finally {
      await inproc.close();
    }
  });

  it('a worker killed mid-generation fails it with an error naming the rank; the next generation runs on its successor', async () => {
    const victim = cluster().pids()[1]!;
    const options: ClusterGenerateOptions = { strategy: 'ring', maxNewTokens: 2000, greedy: true };
    const error = await drain(cluster().generate(dir, prompt, options), ({ index }) => index === 0 && process.kill(victim, 'SIGKILL')).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toMatchObject({ code: expect.stringMatching(/^ERR_(PEER_LOST|TIMEOUT)$/), message: expect.stringMatching(/\brank 1\b/) });
    await expectAllGone([victim]);
    const { summary } = await drain(cluster().generate(dir, prompt, { ...options, maxNewTokens: 3 }));
    expect(summary.tokens).toHaveLength(3);
    expect(isAlive(cluster().pids()[1]!)).toBe(true);
  });

  it('an abort ends the generation with ERR_ABORTED, and so does leaving the loop; the cluster serves the next one', async () => {
    const controller = new AbortController();
    const options: ClusterGenerateOptions = { strategy: 'zigzag', maxNewTokens: 2000, greedy: true, signal: controller.signal };
    await expect(drain(cluster().generate(dir, prompt, options), () => controller.abort())).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    let taken = 0;
    for await (const _ of cluster().generate(dir, prompt, { ...options, signal: undefined })) if (++taken === 2) break;
    const { summary } = await drain(cluster().generate(dir, prompt, { strategy: 'zigzag', maxNewTokens: 3, greedy: true }));
    expect(summary.tokens).toHaveLength(3);
  });
});
