import type { MaskKind } from '@seqpar/core';
import type { ExecutionOptions } from './session-options.js';

/** Messages between an AttentionKernel and its worker thread. Buffers are transferred, never shared. */
export interface AttendRequest {
  readonly id: number;
  readonly shape: { sq: number; sk: number; hq: number; hkv: number; d: number; mask: MaskKind };
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly queryPositions?: Int32Array;
  readonly keyPositions?: Int32Array;
}

export type KernelReply =
  | { readonly id: number; readonly ok: true; readonly out: Float32Array; readonly lse: Float32Array }
  | { readonly id: number; readonly ok: false; readonly code: string; readonly message: string };

export interface KernelWorkerData {
  readonly options: ExecutionOptions;
}
