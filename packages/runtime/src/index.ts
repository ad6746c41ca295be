/**
 * The cluster runtime, cut like vLLM's, one folder per role:
 * - api/: what a program holds. `Cluster` (workers under this process) and `RemoteCluster` (a coordinator
 *   elsewhere) implement one `ClusterClient`, and check every request at the door (check-request.ts).
 * - coordinator/: the coordinator's side: a bounded queue, one request in flight over every rank, world resets
 *   on failure, the client door and its sessions.
 * - executors/: how workers come to exist: in this process, forked processes, or an outside launcher.
 * - worker/: a worker's side: its loop and the ops it serves.
 * - rpc/: the one request path both hops use (coordinator -> worker, client -> coordinator): calls with deadlines,
 *   partial replies, cancels, tensors in bounded chunks.
 */
export { createCluster, launchCluster, Cluster, type ClusterOptions } from './api/cluster.js';
export type { AttentionOptions, AttentionResult, ClusterClient, ClusterGenerateOptions, RequestStats } from './api/cluster-client.js';
export { checkPrefillChunk } from './api/cluster-generate.js';
export { runCoordinator, type CoordinatorHandle, type RunCoordinatorOptions } from './coordinator/run-coordinator.js';
export { connectCluster, RemoteCluster, type ConnectClusterOptions } from './api/remote-cluster.js';
export { runWorker, type RunWorkerOptions, type WorkerHandle } from './worker/run-worker.js';
export { launcherEnv, type LauncherEnv } from './worker/launcher-env.js';
export { WORKER_OPS, type OpCall, type OpReply, type WorkerOp } from './worker/worker-ops.js';
