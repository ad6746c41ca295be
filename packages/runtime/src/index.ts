export { createCluster, launchCluster, Cluster, type AttentionOptions, type AttentionResult, type ClusterOptions, type RequestStats } from './cluster.js';
export { runCoordinator, type CoordinatorHandle, type RunCoordinatorOptions } from './run-coordinator.js';
export { runWorker, type RunWorkerOptions, type WorkerHandle } from './run-worker.js';
export { launcherEnv, type LauncherEnv } from './launcher-env.js';
export { WORKER_OPS, type OpCall, type OpReply, type WorkerOp } from './worker-ops.js';
