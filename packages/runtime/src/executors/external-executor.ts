import type { Token, Transport } from '@seqpar/transport';
import type { Executor } from './executor.js';
import { splitListen } from '../listen-address.js';
import type { Logger } from '../logger.js';
import { RendezvousWorld, type ProcessTransportKind } from './rendezvous-world.js';

export interface ExternalExecutorOptions {
  readonly workers: number;
  /** host:port to listen on; workers get it as their `coordinator`. */
  readonly listen: string;
  readonly token: Token;
  readonly transport: ProcessTransportKind;
  readonly healthTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly log: Logger;
}

/**
 * Workers started by someone else (torchrun, SLURM, a Kubernetes Job, or by hand): this side only listens. A
 * lost worker is the launcher's to restart; until it rejoins, joins of the next world wait for it.
 */
export class ExternalExecutor implements Executor {
  private readonly world: RendezvousWorld;

  constructor(private readonly options: ExternalExecutorOptions) {
    const { host, port } = splitListen(options.listen);
    this.world = new RendezvousWorld({ ...options, kind: options.transport, host, port });
  }

  get workers(): number {
    return this.options.workers;
  }

  /** The address workers should be given (with the port resolved when `listen` asked for port 0). */
  get address(): string {
    return this.world.address;
  }

  async start(): Promise<void> {
    await this.world.listen();
  }

  join(): Promise<Transport> {
    return this.world.join();
  }

  async replace(rank: number): Promise<void> {
    this.options.log.warn({ lost: rank }, 'waiting for the launcher to restart the lost worker');
  }

  onLost(): void {}

  pids(): number[] {
    return [];
  }

  close(): Promise<void> {
    return this.world.close();
  }
}
