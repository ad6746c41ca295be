import type { ExecutionOptions } from './session-options.js';

/** A tensor crossing to or from the compute thread; its buffer is transferred, never shared. */
export interface WireTensor {
  readonly type: 'float32' | 'int32' | 'int64';
  readonly data: Float32Array | Int32Array | BigInt64Array;
  readonly dims: readonly number[];
}

/** Messages between a ComputeThread and its worker. */
export type ComputeRequest =
  | { readonly id: number; readonly kind: 'load'; readonly key: string; readonly model: Uint8Array }
  | { readonly id: number; readonly kind: 'run'; readonly key: string; readonly feeds: Record<string, WireTensor> }
  | { readonly id: number; readonly kind: 'unload'; readonly key: string };

export type ComputeReply =
  | { readonly id: number; readonly ok: true; readonly outputs: Record<string, Float32Array>; readonly spentFeeds: ArrayBuffer[] }
  | { readonly id: number; readonly ok: false; readonly code: 'ERR_KERNEL' | 'ERR_DEVICE_UNAVAILABLE'; readonly message: string };

export interface ComputeWorkerData {
  readonly options: ExecutionOptions;
}
