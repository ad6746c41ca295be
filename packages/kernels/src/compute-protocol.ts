import type { ErrorCode } from '@seqpar/core';
import type { LaneExchange } from './lane-exchange.js';
import type { ExecutionOptions, SessionMemory } from './session-options.js';

/** A tensor crossing to or from the compute thread; its buffer is transferred, never shared. */
export interface WireTensor {
  readonly type: 'float32' | 'int32' | 'int64';
  readonly data: Float32Array | Int32Array | BigInt64Array;
  readonly dims: readonly number[];
}

/**
 * A feed that names a tensor the compute thread keeps between runs (resident-tensors.ts), so it does not cross
 * threads again; `dims` must cover it exactly (e.g. [groups, capacity, width], or [capacity]).
 */
export interface ResidentFeed {
  readonly resident: string;
  readonly dims: readonly number[];
}

export type Feed = WireTensor | ResidentFeed;

/**
 * A feed that is an output of an earlier step of the same chain (the latest output of that name), or its rows
 * [from, to) along the first axis: a batched decode step hands each session's attention its own row of q, k, v.
 */
export interface OutputFeed {
  readonly output: string;
  readonly rows?: readonly [from: number, to: number];
}

export type ChainFeed = Feed | OutputFeed;

/**
 * One step of a chain: run the session `run` on `feeds` (its outputs renamed by `outputs`, graph name -> chain
 * name, where several runs of one graph must not overwrite each other), or write `rows` [t, groups, width] (sent,
 * or an earlier step's output) into the resident tensor `write` from row `at`, creating or growing it to `layout`,
 * or `exchange` the latest outputs out and lse with other ranks and merge them in place (lane-exchange.ts).
 */
export type ChainStep = RunStep | WriteStep | { readonly exchange: LaneExchange };

export interface WriteStep {
  readonly write: string;
  readonly layout: ResidentLayout;
  readonly at: number;
  readonly rows: WireTensor | OutputFeed;
}

export interface RunStep {
  readonly run: string;
  readonly feeds: Readonly<Record<string, ChainFeed>>;
  readonly outputs?: Readonly<Record<string, string>>;
}

/**
 * Messages between a ComputeThread and its worker. A chain runs its steps in order on the thread and replies once
 * with every output of its run steps: a decode step's graphs and cache writes cost one thread round trip
 * (~0.2 ms each here) instead of one per graph and write. Chains and drops wait in a queue on the thread and the
 * one of lowest `priority` runs next (first sent first among equals): see compute-priority.ts.
 */
export type ComputeRequest =
  | { readonly id: number; readonly kind: 'load'; readonly key: string; readonly model: Uint8Array; readonly memory: SessionMemory }
  | { readonly id: number; readonly kind: 'chain'; readonly steps: readonly ChainStep[]; readonly priority: number }
  | { readonly id: number; readonly kind: 'unload'; readonly key: string }
  | { readonly id: number; readonly kind: 'drop'; readonly name: string; readonly priority: number }
  | { readonly id: number; readonly kind: 'close' };

/**
 * A resident tensor [groups, capacity, width]: `capacity` rows per group (e.g. a KV cache share as [Hkv, P, D]),
 * so each group's rows are contiguous. Rows not yet written hold `fill`.
 */
export interface ResidentLayout {
  readonly type: 'float32' | 'int32';
  readonly groups: number;
  readonly width: number;
  readonly capacity: number;
  readonly fill: number;
}

export type ComputeReply =
  | { readonly id: number; readonly ok: true; readonly outputs: Record<string, Float32Array>; readonly spentFeeds: ArrayBuffer[] }
  | { readonly id: number; readonly ok: false; readonly code: ErrorCode; readonly message: string };

export interface ComputeWorkerData {
  readonly options: ExecutionOptions;
}
