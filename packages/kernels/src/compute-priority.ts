import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * How urgent the compute a piece of code sends is: a compute thread runs its queued chains lowest priority first
 * (first sent first among equals, compute-queue.ts), so a decode step or a short prompt's prefill, sent while a long prefill keeps
 * the thread busy, waits for the one chain running then (a graph over one rank's share of the long prompt, or one
 * attention block) and not for everything the long prefill has queued. The priority is carried by the async
 * context, so a strategy or the model need not pass it along: code run inside `withComputePriority` sends at that
 * priority, everything else at DEFAULT_PRIORITY. Work of one request must keep one priority, since only equal
 * priorities keep the order sent (a write, then the run that reads it).
 *
 * The same scope can bound the query rows of each call (`pieceRows`): how long others wait behind one piece of a
 * long prefill is the time of its largest call, so a server trades a little of the long prompt's speed for the
 * latency of everything beside it. Row tiles (row-tiles.ts) and attention pieces read it.
 */
interface ComputeScope {
  readonly priority: number;
  readonly pieceRows: number;
}

const current = new AsyncLocalStorage<ComputeScope>();

/** Code outside any `withComputePriority` scope: after every prioritised request. */
export const DEFAULT_PRIORITY = Number.MAX_SAFE_INTEGER;

export function withComputePriority<T>(priority: number, fn: () => T, pieceRows = Infinity): T {
  return current.run({ priority, pieceRows }, fn);
}

export function computePriority(): number {
  return current.getStore()?.priority ?? DEFAULT_PRIORITY;
}

/** Query rows one compute call of the current scope may take at most (Infinity: no bound beyond the workspace budget's). */
export function pieceRowsCap(): number {
  return current.getStore()?.pieceRows ?? Infinity;
}
