import type { Token, TransportKind } from '@seqpar/transport';
import { ClientDoor } from './client-door.js';
import { launchCluster, type Cluster, type ClusterOptions } from '../api/cluster.js';
import { defaultClientListen } from '../listen-address.js';
import { createLogger } from '../logger.js';

export interface RunCoordinatorOptions extends Pick<ClusterOptions, 'requestTimeoutMs' | 'maxQueue' | 'healthTimeoutMs' | 'connectTimeoutMs'> {
  /** host:port to listen on for workers (port 0 picks a free one; see `address`). */
  readonly listen: string;
  /** host:port to listen on for clients (`connectCluster`). Default: the host of `listen`, the next port. */
  readonly clientListen?: string;
  /** Number of workers that will join. */
  readonly worldSize: number;
  readonly token: Token;
  /** Transport among the workers; shm only when they all share this host. Default ws. */
  readonly transport?: Exclude<TransportKind, 'inproc'>;
}

export interface CoordinatorHandle {
  /** Where workers connect (`runWorker({ coordinator })`, MASTER_ADDR:MASTER_PORT). */
  readonly address: string;
  /** Where clients connect (`connectCluster({ coordinator })`, `seqpar attention --coordinator`). */
  readonly clientAddress: string;
  /** Resolves with the cluster once all `worldSize` workers joined. */
  readonly ready: Promise<Cluster>;
  /** Ends the client sessions, shuts the workers down (they exit) and stops listening. */
  stop(): Promise<void>;
}

/**
 * `seqpar coordinator`: listen for externally launched workers and drive them once all have joined, and take
 * requests from client processes meanwhile (they queue until the workers are there).
 */
export async function runCoordinator(options: RunCoordinatorOptions): Promise<CoordinatorHandle> {
  const { listen, clientListen = defaultClientListen(listen), worldSize, transport = 'ws', ...rest } = options;
  const { cluster, connected } = await launchCluster({ ...rest, workers: worldSize, coordinator: listen, transport });
  const door = await ClientDoor.open(cluster, {
    listen: clientListen,
    token: options.token,
    healthTimeoutMs: options.healthTimeoutMs ?? 2000,
    log: createLogger('coordinator'),
  }).catch(async (error: unknown) => {
    await cluster.close();
    throw error;
  });
  connected.catch(() => door.close());
  return {
    address: cluster.address!,
    clientAddress: door.address,
    ready: connected.then(() => cluster),
    async stop() {
      await door.close();
      await cluster.close();
    },
  };
}
