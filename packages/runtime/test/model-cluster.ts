import { rmSync } from 'node:fs';
import { afterAll, beforeAll, expect } from 'vitest';
import { makeTinyModel, type GenerateEvent, type GenerateSummary, type TinyModelOptions } from '@seqpar/model';
import { createCluster, type Cluster, type ClusterOptions } from '../src/api/cluster.js';
import { expectAllGone, killAll } from './processes.js';

/**
 * Gives the enclosing suite a cluster of worker processes and a tiny model written to `dir`: made before its tests;
 * after them the cluster is closed, every worker process it ever ran (replacements included) must be gone, and `dir`
 * is removed. Returns the cluster's getter.
 */
export function useModelCluster(dir: string, model: TinyModelOptions, options: ClusterOptions): () => Cluster {
  let cluster: Cluster | undefined;
  let seen: number[] = [];
  beforeAll(async () => {
    await makeTinyModel(dir, model);
    cluster = await createCluster(options);
    seen = cluster.pids();
  });
  afterAll(async () => {
    if (cluster) {
      seen.push(...cluster.pids());
      await cluster.close();
    }
    await expectAllGone(seen).finally(() => killAll(seen));
    rmSync(dir, { recursive: true, force: true });
  });
  return () => cluster!;
}

/** The tokens a generation streams (`onToken` sees each index as it comes), checked against its summary's. */
export async function streamedTokens(run: AsyncGenerator<GenerateEvent, GenerateSummary>, onToken?: (index: number) => void): Promise<number[]> {
  const streamed: number[] = [];
  for (;;) {
    const next = await run.next();
    if (next.done) {
      expect(next.value.tokens).toEqual(streamed);
      return streamed;
    }
    streamed.push(next.value.token);
    onToken?.(streamed.length - 1);
  }
}
