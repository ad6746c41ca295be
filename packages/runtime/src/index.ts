/**
 * The cluster runtime, cut like vLLM's: an executor decides how workers come to exist (inproc-executor.ts,
 * process-executor.ts, external-executor.ts), a worker (worker-loop.ts) owns one kernel and serves the ops in
 * worker-ops.ts, and the coordinator (coordinator.ts) sends every worker the same call shape over one transport
 * world in which it is the last rank (control-messages.ts). cluster.ts is the library API on top; a coordinator
 * started with runCoordinator also takes requests from other processes (client-door.ts, client-session.ts), which
 * remote-cluster.ts sends with the same API (client-protocol.ts).
 */
export { createCluster, launchCluster, Cluster, type AttentionOptions, type AttentionResult, type ClusterOptions, type RequestStats } from './api/cluster.js';
export type { ClusterGenerateOptions } from './api/cluster-generate.js';
export { runCoordinator, type CoordinatorHandle, type RunCoordinatorOptions } from './coordinator/run-coordinator.js';
export { connectCluster, RemoteCluster, type ConnectClusterOptions } from './api/remote-cluster.js';
export { runWorker, type RunWorkerOptions, type WorkerHandle } from './worker/run-worker.js';
export { launcherEnv, type LauncherEnv } from './worker/launcher-env.js';
export { WORKER_OPS, type OpCall, type OpReply, type WorkerOp } from './worker/worker-ops.js';
