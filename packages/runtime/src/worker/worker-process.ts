/**
 * Entry of a locally forked worker process (process-executor.ts). argv[2] is a JSON WorkerProcessConfig; the
 * token comes in the environment (SEQPAR_WORKER_TOKEN) so it never shows in `ps`. Tells the parent over IPC
 * `{ ready: true }` once its kernel is up, or `{ ready: false, error }` before exiting with 1. Exits as soon as
 * the parent goes away (the IPC channel closes on the parent's exit, crash or kill), so no worker is orphaned.
 */
import { SeqparError } from '@seqpar/core';
import type { WorkerProcessConfig } from '../executors/process-executor.js';
import { runWorker } from './run-worker.js';

process.on('disconnect', () => process.exit(0));
const config = JSON.parse(process.argv[2]!) as WorkerProcessConfig;
const token = process.env.SEQPAR_WORKER_TOKEN ?? '';
delete process.env.SEQPAR_WORKER_TOKEN;

try {
  const worker = await runWorker({ ...config, token, env: {} });
  process.send!({ ready: true });
  await worker.done;
  process.exit(0);
} catch (error) {
  const { code = 'ERR_INTERNAL', message } = error as SeqparError;
  process.send!({ ready: false, error: { code, message } }, () => process.exit(1));
}
