import { writeFile } from 'node:fs/promises';
import { epochNow, SeqparError, toChromeTrace, UsageError, type RankStats, type Tensor } from '@seqpar/core';
import { createAttentionKernel, type Device } from '@seqpar/kernels';
import { runStrategyInproc, STRATEGY_NAMES, type StrategyName } from '@seqpar/strategies';

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

/** Runs one attention request the way the options ask and writes the trace if requested. */
export async function runAttention(request: AttentionRequest): Promise<AttentionRun> {
  if (request.strategy === 'auto') throw new UsageError('--strategy auto needs the planner, which is not wired yet');
  const strategy = request.strategy;
  const degree = strategy === 'single' ? 1 : request.workers;
  if (request.transport !== 'inproc' || request.coordinator) {
    throw new SeqparError('ERR_TRANSPORT_UNAVAILABLE', `--transport ${request.transport} with worker processes is not available yet; use --transport inproc`);
  }
  const kernels = await Promise.all(Array.from({ length: degree }, () => createAttentionKernel({ device: request.device, threads: request.threads ?? 1 })));
  try {
    const started = epochNow();
    const run = await runStrategyInproc(strategy, request.q, request.k, request.v, { causal: request.causal, degree, kernels, traced: request.trace !== undefined });
    const wallMs = epochNow() - started;
    if (request.trace) await writeFile(request.trace, JSON.stringify(toChromeTrace(run.spans)));
    return { out: run.result.out, lse: run.result.lse, strategy, workers: degree, transport: 'inproc', wallMs, ranks: run.ranks };
  } finally {
    await Promise.all(kernels.map((kernel) => kernel.close()));
  }
}
