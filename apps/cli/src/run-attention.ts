import { writeFile } from 'node:fs/promises';
import { attentionShape, toChromeTrace, UsageError, type RankStats, type Tensor } from '@seqpar/core';
import type { Device } from '@seqpar/kernels';
import { connectCluster, createCluster, type ClusterOptions } from '@seqpar/runtime';
import { STRATEGY_NAMES, type StrategyName } from '@seqpar/strategies';
import { chooseAuto, type AutoChoice } from './auto-strategy.js';
import { log } from './output.js';
import { readTokenFile } from './token-file.js';

export const STRATEGIES = [...STRATEGY_NAMES, 'auto'] as const;
export const TRANSPORTS = ['inproc', 'shm', 'ws'] as const;

export interface AttentionRequest {
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  readonly causal: boolean;
  readonly documents?: readonly number[];
  readonly window?: number;
  readonly strategy: (typeof STRATEGIES)[number];
  /** usp: workers per all-to-all group. */
  readonly ulyssesDegree?: number;
  readonly workers: number;
  readonly transport: (typeof TRANSPORTS)[number];
  readonly threads?: number;
  readonly device: Device;
  readonly trace?: string;
  readonly coordinator?: string;
  readonly tokenFile?: string;
  readonly timeout?: number;
  /** Shaped links, faults and checksums of a locally started cluster (--link, --fault, --checksum). */
  readonly network?: Pick<ClusterOptions, 'links' | 'faults' | 'checksum'>;
}

export interface AttentionRun {
  readonly out: Tensor;
  readonly lse: Tensor;
  readonly strategy: StrategyName;
  readonly workers: number;
  readonly transport: string;
  readonly wallMs: number;
  readonly ranks: RankStats[];
  /** What the planner predicted, with --strategy auto. */
  readonly plan?: AutoChoice['plan'];
}

/**
 * Runs one attention request on a cluster of `workers` (ranks in this process for inproc, worker processes for
 * ws and shm) and writes the trace if asked. The cluster lives for this one request.
 */
export async function runAttention(request: AttentionRequest): Promise<AttentionRun> {
  if (request.coordinator && Object.keys(request.network ?? {}).length) throw new UsageError('--link, --fault and --checksum apply to local workers, not --coordinator');
  // With --coordinator the cluster is already up elsewhere: this process only connects to it (and leaves it running).
  const remote = request.coordinator ? await connectCluster({ coordinator: request.coordinator, token: await readTokenFile(request.tokenFile) }) : undefined;
  try {
    const auto = request.strategy === 'auto' ? autoChoice(request, remote?.workers) : undefined;
    const strategy = auto?.strategy ?? (request.strategy as StrategyName);
    const ulyssesDegree = auto ? auto.ulyssesDegree : request.ulyssesDegree;
    const workers = auto?.workers ?? (strategy === 'single' ? 1 : request.workers);
    if (!auto && !remote) noteSingle(strategy, request.workers);
    const cluster = remote ?? (await createCluster({ workers, transport: request.transport, device: request.device, threads: request.threads ?? 1, ...request.network }));
    try {
      const { out, lse, stats } = await cluster.attention(request.q, request.k, request.v, {
        ...maskOf(request),
        strategy,
        trace: request.trace !== undefined,
        ...(request.timeout === undefined ? {} : { timeoutMs: request.timeout }),
        ...(ulyssesDegree === undefined ? {} : { ulyssesDegree }),
      });
      if (request.trace) await writeFile(request.trace, JSON.stringify(toChromeTrace(stats.spans ?? [])));
      return { out, lse, strategy, workers: stats.workers, transport: stats.transport, wallMs: stats.wallMs, ranks: stats.ranks, ...(auto ? { plan: auto.plan } : {}) };
    } finally {
      if (cluster !== remote) await cluster.close();
    }
  } finally {
    await remote?.close();
  }
}

/** `--strategy single --workers 3` runs on one worker: say so rather than start two idle ones. */
export function noteSingle(strategy: StrategyName, workers: number): void {
  if (strategy === 'single' && workers > 1) log(`note: --strategy single uses one worker (--workers ${workers} ignored)`);
}

const maskOf = ({ causal, documents, window }: AttentionRequest) => ({ causal, ...(documents ? { documents } : {}), ...(window !== undefined ? { window } : {}) });

function autoChoice(request: AttentionRequest, remoteWorkers: number | undefined): AutoChoice {
  const shape = attentionShape(request.q, request.k, request.v);
  return chooseAuto({
    seq: shape.sq,
    heads: shape.hq,
    kvHeads: shape.hkv,
    headDim: shape.d,
    ...maskOf(request),
    workers: remoteWorkers ?? request.workers,
    transport: request.transport,
    fixedDegree: remoteWorkers !== undefined,
  });
}
