import type { SeqparError } from '@seqpar/core';
import type { Transport } from '@seqpar/transport';

/**
 * How workers come to exist (vLLM's executor): in this process, as forked local processes, or started by an
 * outside launcher. The coordinator drives all of them the same way, through the world that `join` returns.
 */
export interface Executor {
  readonly workers: number;
  /** host:port external workers connect to, where this executor accepts them. */
  readonly address?: string;
  /** Launches the workers (or starts listening for them). */
  start(): Promise<void>;
  /** The coordinator's endpoint (rank `workers`) of the next world; resolves once every worker joined it. */
  join(): Promise<Transport>;
  /** Rank `rank` failed: make sure it is gone and, where this executor launches workers, start its successor. */
  replace(rank: number): Promise<void>;
  /** Called when a worker dies on its own (not by `replace` or `close`). */
  onLost(listener: (rank: number, error: SeqparError) => void): void;
  /** Process ids of locally launched worker processes, index = rank (empty when ranks live in this process). */
  pids(): number[];
  close(): Promise<void>;
}

/** ws heartbeat interval for a detection bound: a silent peer is dropped after 2 to 3 intervals. */
export function heartbeatFor(healthTimeoutMs: number): number {
  return Math.max(50, Math.floor(healthTimeoutMs / 4));
}
