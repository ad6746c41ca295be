import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { compiledExecArgv, runnableEntry, SeqparError } from '@seqpar/core';
import type { Device } from '@seqpar/kernels';
import type { SimulatedNetwork, Transport } from '@seqpar/transport';
import type { Executor } from './executor.js';
import { RendezvousWorld, type ProcessTransportKind } from './rendezvous-world.js';

/** What worker-process.ts is started with (the token travels separately, in its environment). */
export interface WorkerProcessConfig {
  readonly rank: number;
  readonly worldSize: number;
  readonly coordinator: string;
  readonly transport: ProcessTransportKind;
  readonly device: Device;
  readonly deviceIndex: number;
  readonly threads: number;
  readonly healthTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly network?: SimulatedNetwork;
}

export interface ProcessExecutorOptions {
  readonly workers: number;
  readonly transport: ProcessTransportKind;
  readonly device: Device;
  readonly threads: number;
  readonly healthTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Checksums, shaped links and faults for every endpoint; a replaced worker starts without the faults. */
  readonly network?: SimulatedNetwork;
}

/** How long a worker told to shut down may take before it is killed. */
const EXIT_GRACE_MS = 1000;

/**
 * `--workers N` on one host: forks N worker processes (rank r drives device r) and replaces any that dies. Each
 * child exits when this process goes away (see worker-process.ts), and a normal exit of this process kills them.
 */
export class ProcessExecutor implements Executor {
  private readonly token = randomBytes(32).toString('hex');
  private readonly world: RendezvousWorld;
  private readonly children: (ChildProcess | undefined)[];
  private readonly retired = new WeakSet<ChildProcess>();
  private lostListener: ((rank: number, error: SeqparError) => void) | undefined;
  private readonly killAll = () => this.children.forEach((child) => child?.kill('SIGKILL'));

  constructor(private readonly options: ProcessExecutorOptions) {
    // The coordinator's endpoint stamps and checks frames like the workers'; it suffers no faults itself.
    const { faults: _faults, ...network } = options.network ?? {};
    this.world = new RendezvousWorld({ ...options, kind: options.transport, token: this.token, host: '127.0.0.1', port: 0, network });
    this.children = new Array(options.workers).fill(undefined);
  }

  get workers(): number {
    return this.options.workers;
  }

  async start(): Promise<void> {
    await this.world.listen();
    process.once('exit', this.killAll);
    await Promise.all(this.children.map((_, rank) => this.spawn(rank)));
  }

  join(): Promise<Transport> {
    return this.world.join();
  }

  async replace(rank: number): Promise<void> {
    await this.retire(rank, 0);
    await this.spawn(rank, false);
  }

  onLost(listener: (rank: number, error: SeqparError) => void): void {
    this.lostListener = listener;
  }

  pids(): number[] {
    return this.children.map((child) => child?.pid ?? -1);
  }

  async close(): Promise<void> {
    await Promise.all(this.children.map((_, rank) => this.retire(rank, EXIT_GRACE_MS)));
    process.off('exit', this.killAll);
    await this.world.close();
  }

  /** Starts rank `rank` and resolves once its kernel is up (it then joins the next world by itself). */
  private spawn(rank: number, withFaults = true): Promise<void> {
    const { faults, ...network } = this.options.network ?? {};
    const config: WorkerProcessConfig = {
      rank,
      worldSize: this.workers,
      coordinator: this.world.address,
      transport: this.options.transport,
      device: this.options.device,
      deviceIndex: rank,
      threads: this.options.threads,
      healthTimeoutMs: this.options.healthTimeoutMs,
      connectTimeoutMs: this.options.connectTimeoutMs,
      network: withFaults && faults ? { ...network, faults } : network,
    };
    const child = fork(runnableEntry(import.meta.url, '../worker/worker-process'), [JSON.stringify(config)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env: { ...process.env, SEQPAR_WORKER_TOKEN: this.token },
      execArgv: workerExecArgv(),
    });
    this.children[rank] = child;
    let failure: SeqparError | undefined;
    const exited = new Promise<SeqparError>((resolve) =>
      child.once('exit', (code, signal) => {
        const error = failure ?? new SeqparError('ERR_PEER_LOST', `worker rank ${rank} (pid ${child.pid}) exited (${signal ?? `code ${code}`})`);
        if (!this.retired.has(child)) this.lostListener?.(rank, error);
        resolve(error);
      }),
    );
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new SeqparError('ERR_TIMEOUT', `worker rank ${rank} did not start within ${this.options.connectTimeoutMs} ms`)),
        this.options.connectTimeoutMs,
      );
      child.on('message', (message: { ready: boolean; error?: { code: SeqparError['code']; message: string } }) => {
        if (!message.ready) failure = new SeqparError(message.error!.code, `worker rank ${rank}: ${message.error!.message}`);
        else {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then((error) => (clearTimeout(timer), reject(error)));
    });
  }

  /** Stops rank `rank` on purpose (not reported as lost): waits `graceMs` for it to exit, then kills it. */
  private async retire(rank: number, graceMs: number): Promise<void> {
    const child = this.children[rank];
    if (!child) return;
    this.retired.add(child);
    this.children[rank] = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    if (graceMs === 0) child.kill('SIGKILL');
    await exited;
    clearTimeout(timer);
  }
}

/** Node options for a worker: ours minus the source condition and minus an inline script (`node -e`) we run from. */
function workerExecArgv(): string[] {
  const args = compiledExecArgv();
  return args.filter((arg, i) => !INLINE_SCRIPT_FLAGS.has(arg) && !INLINE_SCRIPT_FLAGS.has(args[i - 1] ?? '') && !arg.startsWith('--input-type'));
}

const INLINE_SCRIPT_FLAGS = new Set(['-e', '--eval', '-p', '--print']);
