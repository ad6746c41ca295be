/** What sizes the next burst of decode steps (generation-batch.ts). */
export interface BurstInputs {
  /** A session waits for or runs its prefill. */
  readonly prefillPending: boolean;
  /** Wall ms per step of the last burst, the coordinator's round trip included; none before the first. */
  readonly stepMs: number | undefined;
  /** Tokens each decoding session may still sample. */
  readonly budgets: readonly number[];
  /** Ms each decoding session has left to its deadline. */
  readonly remainingMs: readonly number[];
  /** Bound on a burst's steps (ClusterOptions.maxBurstSteps); default MAX_BURST_STEPS. */
  readonly maxSteps?: number;
}

/**
 * How long a burst may run. A cancel, an abort or a deadline frees its session at once, but the ranks decode its
 * row to the end of the burst; a new request's prefill may wait behind the burst's steps on a compute thread
 * (compute-queue.ts serves them first) and switches the bursts back to single steps only after it. 50 ms keeps
 * that wait below a client's perception while it spreads the coordinator's round trip (~2 ms a call on a 2-core
 * host: a socket wake-up each way) over 5-6 steps of a 16k-token session's ~8 ms and 14-16 of a short one's.
 */
const BURST_MS = 50;

/**
 * Past 16 steps the round trip's share per token (1/16 of it, ~0.13 ms) leaves little to gain, and the cap bounds
 * a burst sized from a step time that has since grown (a busier host): the time bound alone would let 1 ms steps
 * run 50 to a burst.
 */
const MAX_BURST_STEPS = 16;

/**
 * Steps in the next burst. One while a session waits for or runs its prefill, so it joins at the next step once
 * its first token is out (a burst would hold it back for the rest of the burst), and one before any step was
 * timed. Otherwise as many as fit in BURST_MS at the last burst's time per step, within the longest remaining
 * token budget and the nearest deadline (a burst ending past a deadline would only decode tokens nobody takes),
 * and at most `maxSteps`.
 */
export function burstSize({ prefillPending, stepMs, budgets, remainingMs, maxSteps = MAX_BURST_STEPS }: BurstInputs): number {
  if (prefillPending || stepMs === undefined) return 1;
  const timeMs = Math.min(BURST_MS, ...remainingMs);
  return Math.max(1, Math.min(maxSteps, Math.max(...budgets), Math.floor(timeMs / stepMs)));
}
