import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generate, loadModel } from '@seqpar/model';
import type { ClusterGenerateOptions } from '../src/api/cluster-generate.js';
import { expectAllGone } from './processes.js';
import { streamedTokens, useModelCluster } from './model-cluster.js';

/**
 * Sharded decode on shm worker processes exchanges its partials on the compute threads, through decode lanes
 * (files in /dev/shm); a lost peer or an abort must end a step that waits on one with a typed error, never a hang.
 */
const dir = mkdtempSync(join(tmpdir(), 'seqpar-decode-lanes-'));
const prompt = Array.from({ length: 301 }, (_, i) => (i * 53) % 200);
const workerEntries = (pids: readonly number[]) => readdirSync('/dev/shm').filter((name) => pids.some((pid) => name.startsWith(`seqpar-${pid}-`)));

describe('sharded decode over decode lanes (2 shm worker processes)', () => {
  const cluster = useModelCluster(
    dir,
    { layers: 3, hidden: 64, heads: 4, kvHeads: 2, vocab: 300, seed: 5 },
    { workers: 2, transport: 'shm', healthTimeoutMs: 2000, requestTimeoutMs: 30_000 },
  );

  it('gives the in-process greedy tokens, and leaves no lane file in /dev/shm', async () => {
    const model = await loadModel(dir);
    const options = { strategy: 'zigzag', maxNewTokens: 24, greedy: true, ignoreEos: true } as const;
    const local = await generate(model, prompt, { ...options, workers: 2 });
    expect(await streamedTokens(cluster().generate(dir, prompt, options))).toEqual(local.tokens);
    expect(workerEntries(cluster().pids())).toEqual([]);
  });

  it('a worker killed while its peer waits in an exchange fails the generation naming the rank; the next one runs', async () => {
    const victim = cluster().pids()[1]!;
    const options: ClusterGenerateOptions = { strategy: 'zigzag', maxNewTokens: 4000, greedy: true, ignoreEos: true };
    const error = await streamedTokens(cluster().generate(dir, prompt, options), (index) => void (index === 3 && process.kill(victim, 'SIGKILL'))).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toMatchObject({ code: expect.stringMatching(/^ERR_(PEER_LOST|TIMEOUT)$/), message: expect.stringMatching(/\brank 1\b/) });
    await expectAllGone([victim]);
    expect(await streamedTokens(cluster().generate(dir, prompt, { ...options, maxNewTokens: 3 }))).toHaveLength(3);
  });

  it('an abort mid-decode ends with ERR_ABORTED and the cluster serves the next generation', async () => {
    const controller = new AbortController();
    const options: ClusterGenerateOptions = { strategy: 'zigzag', maxNewTokens: 4000, greedy: true, ignoreEos: true, signal: controller.signal };
    await expect(streamedTokens(cluster().generate(dir, prompt, options), (index) => void (index === 5 && controller.abort()))).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(await streamedTokens(cluster().generate(dir, prompt, { ...options, signal: undefined, maxNewTokens: 3 }))).toHaveLength(3);
  });
});
