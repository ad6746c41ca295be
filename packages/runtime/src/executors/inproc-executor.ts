import { setMaxListeners } from 'node:events';
import { SeqparError, type BlockAttentionKernel } from '@seqpar/core';
import { createInprocGroup, FaultInjector, type InprocGroupOptions, type SimulatedNetwork, type Transport } from '@seqpar/transport';
import type { Executor } from './executor.js';
import { createLogger } from '../logger.js';
import { serveWorker } from '../worker/worker-loop.js';

/**
 * The NULL-device executor: every rank runs in this process as an async task with its own kernel thread, and
 * each world is a fresh inproc transport group. A kill fault ends only a rank's transport (its loop joins the next
 * world); a rank loop that fails is reported lost and started afresh by `replace`.
 */
export class InprocExecutor implements Executor {
  private readonly rendezvous: InprocRendezvous;
  private readonly stop = new AbortController();
  private kernels: BlockAttentionKernel[] = [];
  private loops: (Promise<void> | undefined)[] = [];
  private lostListener: ((rank: number, error: SeqparError) => void) | undefined;

  constructor(
    readonly workers: number,
    private readonly createKernel: (rank: number) => Promise<BlockAttentionKernel>,
    network: SimulatedNetwork = {},
    private readonly connectTimeoutMs = 30_000,
  ) {
    // One injector for every world, so a fault fires once, not again after each recovery.
    const { faults, ...rest } = network;
    this.rendezvous = new InprocRendezvous(workers + 1, faults ? { ...rest, faults: new FaultInjector(faults) } : rest);
    // Every in-process rank waits on this one signal: 100 ranks are 100 listeners by design, not a leak.
    setMaxListeners(0, this.stop.signal);
  }

  async start(): Promise<void> {
    this.kernels = await Promise.all(Array.from({ length: this.workers }, (_, rank) => this.createKernel(rank)));
    this.loops = this.kernels.map((_, rank) => this.runLoop(rank));
  }

  join(): Promise<Transport> {
    return this.rendezvous.join(this.workers, this.connectTimeoutMs);
  }

  async replace(rank: number): Promise<void> {
    if (!this.loops[rank] && !this.stop.signal.aborted) this.loops[rank] = this.runLoop(rank);
  }

  onLost(listener: (rank: number, error: SeqparError) => void): void {
    this.lostListener = listener;
  }

  private runLoop(rank: number): Promise<void> {
    const log = createLogger(rank);
    const join = (timeoutMs?: number) => this.rendezvous.join(rank, timeoutMs ?? this.connectTimeoutMs);
    return serveWorker({ rank, workers: this.workers, kernel: this.kernels[rank]!, join, log, signal: this.stop.signal }).catch((error: unknown) => {
      this.loops[rank] = undefined;
      if (this.stop.signal.aborted) return;
      const lost = error instanceof SeqparError ? error : new SeqparError('ERR_INTERNAL', String(error), { cause: error });
      log.error({ code: lost.code, reason: lost.message }, 'rank loop failed');
      this.lostListener?.(rank, lost);
    });
  }

  pids(): number[] {
    return [];
  }

  async close(): Promise<void> {
    this.stop.abort();
    this.rendezvous.cancel(new SeqparError('ERR_CLOSED', 'the cluster is closed'));
    await Promise.all(this.loops);
    await Promise.all(this.kernels.map((kernel) => kernel.close()));
  }
}

/** Hands every rank its endpoint of a new inproc group once all `size` ranks asked for one. */
class InprocRendezvous {
  private waiting = new Map<number, { resolve(t: Transport): void; reject(e: Error): void }>();

  constructor(
    private readonly size: number,
    private readonly options: InprocGroupOptions,
  ) {}

  /** Resolves once all ranks asked; rejects with ERR_TIMEOUT naming the missing ranks after `timeoutMs`. */
  join(rank: number, timeoutMs: number): Promise<Transport> {
    return new Promise((resolve, reject) => {
      if (this.waiting.has(rank)) return reject(new SeqparError('ERR_INTERNAL', `rank ${rank} joined the same inproc world twice`));
      const timer = setTimeout(() => {
        if (this.waiting.get(rank)?.reject !== fail) return;
        this.waiting.delete(rank);
        const missing = Array.from({ length: this.size }, (_, r) => r).filter((r) => r !== rank && !this.waiting.has(r));
        fail(new SeqparError('ERR_TIMEOUT', `in-process world: rank ${missing.join(', rank ')} did not join within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      const fail = (error: Error) => (clearTimeout(timer), reject(error));
      this.waiting.set(rank, { resolve: (transport) => (clearTimeout(timer), resolve(transport)), reject: fail });
      if (this.waiting.size < this.size) return;
      const group = createInprocGroup(this.size, this.options);
      for (const [member, waiter] of this.waiting) waiter.resolve(group[member]!);
      this.waiting.clear();
    });
  }

  cancel(error: Error): void {
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}
