import { epochNow, UsageError, type Tensor } from '@seqpar/core';
import { createAttentionKernel, type Device } from '@seqpar/kernels';
import { gatherLse, rankRowRuns } from '@seqpar/strategies';
import { checkFaultPlan, checkLinkSpec, type FaultPlan, type LinkSpec, type SimulatedNetwork, type Token, type TransportKind } from '@seqpar/transport';
import type { GenerateEvent, GenerateSummary } from '@seqpar/model';
import { checkAttention } from './check-request.js';
import { faultInWhile } from './fault-in.js';
import type { AttentionOptions, AttentionResult, ClusterClient, ClusterGenerateOptions, RequestStats } from './cluster-client.js';
import { generateOnCluster } from './cluster-generate.js';
import { Coordinator } from '../coordinator/coordinator.js';
import type { Executor } from '../executors/executor.js';
import { ExternalExecutor } from '../executors/external-executor.js';
import { InprocExecutor } from '../executors/inproc-executor.js';
import { createLogger } from '../logger.js';
import { ProcessExecutor } from '../executors/process-executor.js';
import type { RankReply } from '../coordinator/request-job.js';
import { rowSegments } from '../rpc/tensor-payload.js';

export interface ClusterOptions {
  /** Number of workers (one per device). */
  readonly workers: number;
  readonly device?: Device;
  /** inproc: ranks in this process; ws or shm: one process per worker. Default inproc. */
  readonly transport?: TransportKind;
  /** ONNX Runtime intra-op threads per worker. Default 1. */
  readonly threads?: number;
  /** Bound on a request from submission to answer. Default 60 s. */
  readonly requestTimeoutMs?: number;
  /** Requests that may wait for the cluster; more are refused with ERR_BUSY. Default 64. */
  readonly maxQueue?: number;
  /** Generations decoded together as one batch (continuous batching); more wait in the queue. Default 16. */
  readonly maxBatch?: number;
  /** Decode steps of that batch one call to the workers may run back to back (a burst). Default 16; 1: a call per step. */
  readonly maxBurstSteps?: number;
  /** A dead or silent worker fails the request within about this long. Default 2000 ms. */
  readonly healthTimeoutMs?: number;
  /** Bound on workers joining a world. Default 30 s (local) or 120 s (external). */
  readonly connectTimeoutMs?: number;
  /** host:port to listen on for externally launched workers (`runWorker`) instead of starting local ones. */
  readonly coordinator?: string;
  /** Shared secret of externally launched workers (required with `coordinator`). */
  readonly token?: Token;
  /** Simulated links between workers: latency, bandwidth, jitter, per direction if asked. Control links stay unshaped. */
  readonly links?: LinkSpec;
  /** Faults to inject into the workers (ranks 0..workers-1); each fires once over the cluster's life. */
  readonly faults?: FaultPlan;
  /** CRC32 and sequence number on every frame, checked on arrival. Default: on when `links` or `faults` is set. */
  readonly checksum?: boolean;
}

/** A running set of workers and the coordinator that drives them. Create with {@link createCluster}. */
export class Cluster implements ClusterClient {
  constructor(
    private readonly coordinator: Coordinator,
    private readonly executor: Executor,
    readonly transport: TransportKind,
    private readonly requestTimeoutMs: number,
  ) {}

  get workers(): number {
    return this.coordinator.workers;
  }

  /** host:port external workers connect to (with `coordinator`), with the port resolved. */
  get address(): string | undefined {
    return this.executor.address;
  }

  /** Process ids of local worker processes, index = rank (empty for inproc and external workers). */
  pids(): number[] {
    return this.executor.pids();
  }

  async attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Promise<AttentionResult> {
    const { strategy, name, degree, shape, mask, strategyOptions } = checkAttention(q, k, v, options, this.workers);
    const seq = shape.sq;
    // Wall time covers what the caller waits for: sharding the inputs, the distributed run and gathering the result.
    const started = epochNow();
    // Each rank's share ships straight from its rows of q, k, v, and its out rows land straight in `out`: no
    // sharded copies on the way (at 16k tokens, N = 2, those cost ~110 ms of fresh pages and copies per request).
    const runs = Array.from({ length: degree }, (_, rank) => rankRowRuns(strategy, seq, degree, rank, mask));
    const calls = runs.map((rows) => ({ args: { strategy: name, seq, ...mask, ...strategyOptions }, tensors: [q, k, v].map((t) => rowSegments(t, rows)) }));
    const out = { data: new Float32Array(q.data.length), shape: [...q.shape] };
    const submitted = this.coordinator.submit('attention', calls, { ...this.jobOptions(options), replyInto: (rank) => [rowSegments(out, runs[rank]!)] });
    void faultInWhile(out.data, submitted);
    const replies = await submitted;
    // One rank's lse already is the request's, in order: handed out as received rather than gathered into a copy.
    const parts = replies.map((reply) => reply.tensors[1]!);
    const lse = degree === 1 ? parts[0]! : gatherLse(strategy, parts, seq, mask);
    const wallMs = epochNow() - started;
    return { out, lse, stats: { strategy: name, workers: degree, transport: this.transport, seq, wallMs, ...rankStats(replies) } };
  }

  /**
   * Collective smoke test: rank r sums `parts[r]`, the ranks all-gather their sums over the data plane, and each
   * answers with the list it gathered (index = rank of the reply).
   */
  async allGatherChecksum(parts: readonly Float32Array[], options: Pick<AttentionOptions, 'signal' | 'timeoutMs'> = {}): Promise<number[][]> {
    if (parts.length !== this.workers) throw new UsageError(`allGatherChecksum needs one part per worker (${this.workers}), got ${parts.length}`);
    const calls = parts.map((data) => ({ args: {}, tensors: [{ data, shape: [data.length] }] }));
    const replies = await this.coordinator.submit('all-gather-checksum', calls, this.jobOptions(options));
    return replies.map((reply) => reply.header.sums as number[]);
  }

  generate(modelDir: string, prompt: readonly number[], options: ClusterGenerateOptions): AsyncGenerator<GenerateEvent, GenerateSummary> {
    return generateOnCluster(this.coordinator, modelDir, prompt, options);
  }

  close(): Promise<void> {
    return this.coordinator.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private jobOptions(options: AttentionOptions) {
    return { timeoutMs: options.timeoutMs ?? this.requestTimeoutMs, traced: options.trace ?? false, ...(options.signal ? { signal: options.signal } : {}) };
  }
}

function rankStats(replies: RankReply[]): Pick<RequestStats, 'ranks' | 'spans'> {
  const ranks = replies.map((reply) => reply.stats);
  return replies.some((reply) => reply.spans) ? { ranks, spans: replies.map((reply) => reply.spans ?? []) } : { ranks };
}

/** Starts the workers (or waits for external ones to join) and returns the cluster once every rank is up. */
export async function createCluster(options: ClusterOptions): Promise<Cluster> {
  const { cluster, connected } = await launchCluster(options);
  await connected;
  return cluster;
}

/**
 * Launches the workers (or starts listening for external ones) and returns at once; `connected` settles when
 * every rank has joined. On a failed launch or join, everything started is stopped again.
 */
export async function launchCluster(options: ClusterOptions): Promise<{ cluster: Cluster; connected: Promise<void> }> {
  if (!Number.isInteger(options.workers) || options.workers < 1) throw new UsageError(`workers must be a positive integer, got ${options.workers}`);
  const { maxBurstSteps } = options;
  if (maxBurstSteps !== undefined && !(Number.isInteger(maxBurstSteps) && maxBurstSteps >= 1))
    throw new UsageError(`maxBurstSteps must be a positive integer, got ${maxBurstSteps}`);
  const transport = options.transport ?? (options.coordinator ? 'ws' : 'inproc');
  const healthTimeoutMs = options.healthTimeoutMs ?? 2000;
  const log = createLogger('coordinator');
  const executor = chooseExecutor(options, transport, healthTimeoutMs, log);
  const coordinator = new Coordinator(executor, {
    maxQueue: options.maxQueue ?? 64,
    ...(options.maxBatch === undefined ? {} : { maxBatch: options.maxBatch }),
    ...(maxBurstSteps === undefined ? {} : { maxBurstSteps }),
    healthTimeoutMs,
    log,
  });
  const cluster = new Cluster(coordinator, executor, transport, options.requestTimeoutMs ?? 60_000);
  const failed = async (error: unknown): Promise<never> => {
    await coordinator.close();
    throw error;
  };
  await coordinator.launch().catch(failed);
  const connected = coordinator.connect().catch(failed);
  connected.catch(() => undefined);
  return { cluster, connected };
}

function chooseExecutor(options: ClusterOptions, transport: TransportKind, healthTimeoutMs: number, log: ReturnType<typeof createLogger>): Executor {
  const device = options.device ?? 'cpu';
  const threads = options.threads ?? 1;
  const network = simulatedNetwork(options);
  if (options.coordinator !== undefined) {
    if (transport === 'inproc') throw new UsageError('external workers need the ws or shm transport');
    if (network.links || network.faults) throw new UsageError('links and faults apply to locally started workers, not external ones');
    if (options.token === undefined || options.token.length === 0) throw new UsageError('a coordinator for external workers needs a token');
    const connectTimeoutMs = options.connectTimeoutMs ?? 120_000;
    return new ExternalExecutor({ workers: options.workers, listen: options.coordinator, token: options.token, transport, healthTimeoutMs, connectTimeoutMs, log });
  }
  if (transport === 'inproc')
    return new InprocExecutor(options.workers, (rank) => createAttentionKernel({ device, deviceIndex: rank, threads }), network, options.connectTimeoutMs);
  if (transport !== 'ws' && transport !== 'shm') throw new UsageError(`unknown transport '${String(transport)}' (inproc, ws or shm)`);
  return new ProcessExecutor({ workers: options.workers, transport, device, threads, healthTimeoutMs, connectTimeoutMs: options.connectTimeoutMs ?? 30_000, network });
}

/** Checked link and fault settings for every endpoint; shaping is limited to the workers' links. */
function simulatedNetwork({ links, faults, checksum, workers }: ClusterOptions): SimulatedNetwork {
  if (links) checkLinkSpec(links);
  if (faults) checkFaultPlan(faults, workers);
  return {
    checksum: checksum ?? (links !== undefined || faults !== undefined),
    ...(links ? { links: { ...links, ranks: workers } } : {}),
    ...(faults ? { faults } : {}),
  };
}
