import type { Token, TransportKind } from '@seqpar/transport';
import { launchCluster, type Cluster, type ClusterOptions } from './cluster.js';

export interface RunCoordinatorOptions extends Pick<ClusterOptions, 'requestTimeoutMs' | 'maxQueue' | 'healthTimeoutMs' | 'connectTimeoutMs'> {
  /** host:port to listen on (port 0 picks a free one; see `address`). */
  readonly listen: string;
  /** Number of workers that will join. */
  readonly worldSize: number;
  readonly token: Token;
  /** Transport among the workers; shm only when they all share this host. Default ws. */
  readonly transport?: Exclude<TransportKind, 'inproc'>;
}

export interface CoordinatorHandle {
  /** Where workers connect (`runWorker({ coordinator })`, MASTER_ADDR:MASTER_PORT). */
  readonly address: string;
  /** Resolves with the cluster once all `worldSize` workers joined. */
  readonly ready: Promise<Cluster>;
  /** Shuts the workers down (they exit) and stops listening. */
  stop(): Promise<void>;
}

/** `seqpar coordinator`: listen for externally launched workers and drive them once all have joined. */
export async function runCoordinator(options: RunCoordinatorOptions): Promise<CoordinatorHandle> {
  const { listen, worldSize, transport = 'ws', ...rest } = options;
  const { cluster, connected } = await launchCluster({ ...rest, workers: worldSize, coordinator: listen, transport });
  return { address: cluster.address!, ready: connected.then(() => cluster), stop: () => cluster.close() };
}
