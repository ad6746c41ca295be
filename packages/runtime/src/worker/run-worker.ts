import { UsageError } from '@seqpar/core';
import { createAttentionKernel, type Device } from '@seqpar/kernels';
import { FaultInjector, type SimulatedNetwork, type Token } from '@seqpar/transport';
import { launcherEnv } from './launcher-env.js';
import { createLogger } from '../logger.js';
import { joinWorld, type ProcessTransportKind } from '../executors/rendezvous-world.js';
import { serveWorker } from './worker-loop.js';

export interface RunWorkerOptions {
  /** host:port the coordinator listens on; default MASTER_ADDR:MASTER_PORT from the launcher environment. */
  readonly coordinator?: string;
  /** This worker's rank; default from the launcher environment (RANK, SLURM_PROCID, JOB_COMPLETION_INDEX). */
  readonly rank?: number;
  /** Number of workers; default WORLD_SIZE or SLURM_NTASKS. */
  readonly worldSize?: number;
  /** Shared secret, the same as the coordinator's. */
  readonly token: Token;
  readonly device?: Device;
  /** Device to drive; default the launcher's local rank, else 0. */
  readonly deviceIndex?: number;
  /** ONNX Runtime intra-op threads. Default 1. */
  readonly threads?: number;
  readonly transport?: ProcessTransportKind;
  /** Address this worker listens on for its peers; must be reachable from them. Default 127.0.0.1. */
  readonly listenHost?: string;
  readonly healthTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** After losing the coordinator, keep trying to rejoin this long. Default 30 s. */
  readonly rejoinTimeoutMs?: number;
  /**
   * Checksums, shaped links and faults of this worker's transport. A kill fault SIGKILLs this process, like a
   * crash; the other faults act on its frames.
   */
  readonly network?: SimulatedNetwork;
  /** Environment to read the launcher's variables from. Default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface WorkerHandle {
  readonly rank: number;
  readonly worldSize: number;
  /** Resolves once the worker first joined the coordinator's world (until then it retries a coordinator that is not up yet). */
  readonly joined: Promise<void>;
  /** Settles when the worker stops: resolves on shutdown or stop(), rejects on a fatal error (e.g. ERR_AUTH). */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts one worker: its compute thread on the device, then it joins the coordinator's world and serves until
 * the coordinator shuts it down. Resolves once the kernel is up; joining and serving continue in `done`.
 */
export async function runWorker(options: RunWorkerOptions): Promise<WorkerHandle> {
  const launched = launcherEnv(options.env ?? process.env);
  const rank = options.rank ?? launched.rank;
  const worldSize = options.worldSize ?? launched.worldSize;
  const coordinator = options.coordinator ?? launched.coordinator;
  if (rank === undefined) throw new UsageError('worker rank unknown: pass --rank or run under torchrun, SLURM or a Kubernetes indexed Job');
  if (worldSize === undefined) throw new UsageError('world size unknown: pass the number of workers or set WORLD_SIZE');
  if (!coordinator) throw new UsageError('coordinator address unknown: pass --coordinator HOST:PORT or set MASTER_ADDR and MASTER_PORT');
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new UsageError(`rank ${rank} is outside 0..${worldSize - 1}`);
  const log = createLogger(rank);
  const kernel = await createAttentionKernel({ device: options.device ?? 'cpu', deviceIndex: options.deviceIndex ?? launched.localRank ?? 0, threads: options.threads ?? 1 });
  const stop = new AbortController();
  const { faults, ...network } = options.network ?? {};
  const conditions = faults ? { ...network, faults: new FaultInjector(faults, { onKill: () => process.kill(process.pid, 'SIGKILL') }) } : network;
  const connectTimeoutMs = options.connectTimeoutMs ?? 30_000;
  let markJoined!: () => void;
  const joined = new Promise<void>((resolve) => (markJoined = resolve));
  const join = (timeoutMs?: number) =>
    joinWorld({
      rank,
      workers: worldSize,
      kind: options.transport ?? 'ws',
      token: options.token,
      coordinator,
      healthTimeoutMs: options.healthTimeoutMs ?? 2000,
      connectTimeoutMs: Math.min(connectTimeoutMs, timeoutMs ?? connectTimeoutMs),
      ...(options.listenHost ? { listenHost: options.listenHost } : {}),
      conditions,
      onRetry: ({ address, reason, delayMs, remainingMs }) =>
        log.warn(`coordinator ${address} not reachable yet: ${reason}; retrying in ${seconds(delayMs)} (giving up in ${seconds(remainingMs)})`),
    }).then((world) => (markJoined(), world));
  // Whoever awaits `done` reports its error (the CLI prints it as one line).
  const done = serveWorker({ rank, workers: worldSize, kernel, join, log, signal: stop.signal, rejoinTimeoutMs: options.rejoinTimeoutMs ?? 30_000 }).finally(() => kernel.close());
  done.catch(() => undefined);
  return {
    rank,
    worldSize,
    joined,
    done,
    async stop() {
      stop.abort();
      await done.catch(() => undefined);
    },
  };
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
