import { rmSync } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { makeTinyModel, type TinyModelOptions } from '@seqpar/model';
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
