import { SeqparError, type BlockAttentionKernel } from '@seqpar/core';
import { createInprocGroup, FaultInjector, type InprocGroupOptions, type SimulatedNetwork, type Transport } from '@seqpar/transport';
import type { Executor } from './executor.js';
import { createLogger } from '../logger.js';
import { serveWorker } from '../worker/worker-loop.js';

/**
 * The NULL-device executor: every rank runs in this process as an async task with its own kernel thread, and
 * each world is a fresh inproc transport group. Ranks cannot die on their own here (a kill fault ends only a rank's
 * transport; its loop joins the next world), so `replace` has nothing to do.
 */
export class InprocExecutor implements Executor {
  private readonly rendezvous: InprocRendezvous;
  private readonly stop = new AbortController();
  private kernels: BlockAttentionKernel[] = [];
  private loops: Promise<void>[] = [];

  constructor(
    readonly workers: number,
    private readonly createKernel: (rank: number) => Promise<BlockAttentionKernel>,
    network: SimulatedNetwork = {},
  ) {
    // One injector for every world, so a fault fires once, not again after each recovery.
    const { faults, ...rest } = network;
    this.rendezvous = new InprocRendezvous(workers + 1, faults ? { ...rest, faults: new FaultInjector(faults) } : rest);
  }

  async start(): Promise<void> {
    this.kernels = await Promise.all(Array.from({ length: this.workers }, (_, rank) => this.createKernel(rank)));
    this.loops = this.kernels.map((kernel, rank) =>
      serveWorker({ rank, workers: this.workers, kernel, join: () => this.rendezvous.join(rank), log: createLogger(rank), signal: this.stop.signal }).catch(() => undefined),
    );
  }

  join(): Promise<Transport> {
    return this.rendezvous.join(this.workers);
  }

  async replace(): Promise<void> {}

  onLost(): void {}

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

  join(rank: number): Promise<Transport> {
    return new Promise((resolve, reject) => {
      if (this.waiting.has(rank)) return reject(new SeqparError('ERR_INTERNAL', `rank ${rank} joined the same inproc world twice`));
      this.waiting.set(rank, { resolve, reject });
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
