import { writeFile } from 'node:fs/promises';
import { toChromeTrace, UsageError, type RankStats, type Tensor } from '@seqpar/core';
import type { Device } from '@seqpar/kernels';
import { connectCluster, createCluster } from '@seqpar/runtime';
import { STRATEGY_NAMES, type StrategyName } from '@seqpar/strategies';
import { readTokenFile } from './token-file.js';

export const STRATEGIES = [...STRATEGY_NAMES, 'auto'] as const;
export const TRANSPORTS = ['inproc', 'shm', 'ws'] as const;

export interface AttentionRequest {
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  readonly causal: boolean;
  readonly strategy: (typeof STRATEGIES)[number];
  readonly workers: number;
  readonly transport: (typeof TRANSPORTS)[number];
  readonly threads?: number;
  readonly device: Device;
  readonly trace?: string;
  readonly coordinator?: string;
  readonly tokenFile?: string;
}

export interface AttentionRun {
  readonly out: Tensor;
  readonly lse: Tensor;
  readonly strategy: StrategyName;
  readonly workers: number;
  readonly transport: string;
  readonly wallMs: number;
  readonly ranks: RankStats[];
}

/**
 * Runs one attention request on a cluster of `workers` (ranks in this process for inproc, worker processes for
 * ws and shm) and writes the trace if asked. The cluster lives for this one request.
 */
export async function runAttention(request: AttentionRequest): Promise<AttentionRun> {
  if (request.strategy === 'auto') throw new UsageError('--strategy auto needs the planner, which is not wired yet');
  const strategy = request.strategy;
  const workers = strategy === 'single' ? 1 : request.workers;
  // With --coordinator the cluster is already up elsewhere: this process only connects to it (and leaves it running).
  const cluster = request.coordinator
    ? await connectCluster({ coordinator: request.coordinator, token: await readTokenFile(request.tokenFile) })
    : await createCluster({ workers, transport: request.transport, device: request.device, threads: request.threads ?? 1 });
  try {
    const { out, lse, stats } = await cluster.attention(request.q, request.k, request.v, { causal: request.causal, strategy, trace: request.trace !== undefined });
    if (request.trace) await writeFile(request.trace, JSON.stringify(toChromeTrace(stats.spans ?? [])));
    return { out, lse, strategy, workers: stats.workers, transport: stats.transport, wallMs: stats.wallMs, ranks: stats.ranks };
  } finally {
    await cluster.close();
  }
}
