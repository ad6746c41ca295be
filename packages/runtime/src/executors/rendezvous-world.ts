import { createTransport, startRendezvous, type ConnectRetry, type LinkConditions, type RendezvousServer, type Token, type Transport } from '@seqpar/transport';
import { explainJoinFailure, WORKER_ROLE } from '../coordinator-address.js';
import { heartbeatFor } from './executor.js';

export type ProcessTransportKind = 'ws' | 'shm';

export interface RendezvousWorldOptions {
  readonly workers: number;
  readonly kind: ProcessTransportKind;
  readonly token: Token;
  readonly healthTimeoutMs: number;
  /** Bound on one join (every worker connecting). */
  readonly connectTimeoutMs: number;
  /** Where the rendezvous listens: host and port (0 = any free port). */
  readonly host: string;
  readonly port: number;
  /** Checksums and shaping of the coordinator's endpoint. */
  readonly network?: Omit<LinkConditions, 'faults'>;
}

/**
 * The coordinator's side of a multi-process world: the rendezvous server workers register with (its address is
 * what they are given as `coordinator`), and the coordinator's own endpoint as the world's last rank.
 */
export class RendezvousWorld {
  private server: RendezvousServer | undefined;

  constructor(private readonly options: RendezvousWorldOptions) {}

  get address(): string {
    return this.server!.address;
  }

  async listen(): Promise<string> {
    const { workers, token, host, port } = this.options;
    this.server = await startRendezvous({ worldSize: workers + 1, token, host, port, role: WORKER_ROLE });
    return this.server.address;
  }

  join(): Promise<Transport> {
    const { network, ...options } = this.options;
    return joinWorld({ ...options, rank: options.workers, coordinator: this.address, ...(network ? { conditions: network } : {}) });
  }

  async close(): Promise<void> {
    await this.server?.close();
  }
}

/** One endpoint (worker `rank`, or the coordinator as rank `workers`) of the world behind `coordinator`. */
export function joinWorld(options: {
  rank: number;
  workers: number;
  kind: ProcessTransportKind;
  token: Token;
  coordinator: string;
  healthTimeoutMs: number;
  connectTimeoutMs: number;
  listenHost?: string;
  /** Checksums, shaped links and this rank's fault injector (the same one for every world it joins). */
  conditions?: LinkConditions;
  /** Told before each new try at a coordinator that is not up (yet). */
  onRetry?: (retry: ConnectRetry) => void;
}): Promise<Transport> {
  return createTransport(options.kind, {
    rank: options.rank,
    worldSize: options.workers + 1,
    token: options.token,
    rendezvous: options.coordinator,
    role: WORKER_ROLE,
    heartbeatMs: heartbeatFor(options.healthTimeoutMs),
    // A worker never takes the coordinator's silence for its death: the coordinator runs in its user's process,
    // whose own code may hold the event loop for seconds; a coordinator that dies closes its connections.
    ...(options.rank === options.workers ? {} : { patientPeers: [options.workers] }),
    connectTimeoutMs: options.connectTimeoutMs,
    ...(options.listenHost ? { listenHost: options.listenHost } : {}),
    ...(options.onRetry ? { onRendezvousRetry: options.onRetry } : {}),
    ...options.conditions,
  }).catch((error: unknown) => {
    throw explainJoinFailure(error, options.coordinator, WORKER_ROLE, options.workers);
  });
}
