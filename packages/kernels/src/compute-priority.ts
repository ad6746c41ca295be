import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * How urgent the compute a piece of code sends is: a compute thread runs its queued chains lowest priority first
 * (first sent first among equals, compute-queue.ts), so a decode step or a short prompt's prefill, sent while a long prefill keeps
 * the thread busy, waits for the one chain running then (a graph over one rank's share of the long prompt, or one
 * attention block) and not for everything the long prefill has queued. The priority is carried by the async
 * context, so a strategy or the model need not pass it along: code run inside `withComputePriority` sends at that
 * priority, everything else at DEFAULT_PRIORITY. Work of one request must keep one priority, since only equal
 * priorities keep the order sent (a write, then the run that reads it).
 */
const current = new AsyncLocalStorage<number>();

/** Code outside any `withComputePriority` scope: after every prioritised request. */
export const DEFAULT_PRIORITY = Number.MAX_SAFE_INTEGER;

export function withComputePriority<T>(priority: number, fn: () => T): T {
  return current.run(priority, fn);
}

export function computePriority(): number {
  return current.getStore() ?? DEFAULT_PRIORITY;
}
