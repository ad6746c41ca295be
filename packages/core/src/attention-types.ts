import type { Span } from './layout.js';
import type { Tensor } from './tensor.js';

/**
 * Which keys a query may see inside one block. Indices are local to the block (query i, key j), except for
 * `positions`, which compares explicit global token positions (decode, uneven layouts):
 *  - none:             every key
 *  - causal-inclusive: j <= i
 *  - causal-strict:    j <  i
 *  - band:             min <= j - i <= max (the edges of a sliding window, a causal diagonal off the corner)
 *  - positions:        keyPositions[j] <= queryPositions[i]
 */
export type MaskSpec =
  | { readonly kind: 'none' }
  | { readonly kind: 'causal-inclusive' }
  | { readonly kind: 'causal-strict' }
  | { readonly kind: 'band'; readonly min: number; readonly max: number }
  | { readonly kind: 'positions'; readonly queryPositions: Int32Array; readonly keyPositions: Int32Array };

export type MaskKind = MaskSpec['kind'];

/** The masks of a block whose query and key rows are both runs of the sequence: block-local indices suffice. */
export type BlockMask = Exclude<MaskSpec, { readonly kind: 'positions' }>;

export const NO_MASK: BlockMask = { kind: 'none' };

/** One kernel call's share of a block: its query rows and key rows (block-local) under a mask local to them. */
export interface BlockPiece {
  readonly query: Span;
  readonly key: Span;
  readonly mask: BlockMask;
}

/** Attention of a query block over one key/value block: out [Sq, Hq, D] and lse [Hq, Sq] (natural log). */
export interface PartialAttention {
  readonly out: Tensor;
  readonly lse: Tensor;
}

/**
 * Computes one block of attention with scale 1/sqrt(D). q [Sq, Hq, D]; k, v [Sk, Hkv, D]; GQA: query head h
 * reads kv head floor(h / (Hq / Hkv)). Masked scores use -1e30 (not -Infinity) so fully masked rows merge away.
 * Implementations: the ONNX Runtime kernel in @seqpar/kernels, the fp64 reference in this package.
 */
export interface BlockAttentionKernel {
  attend(q: Tensor, k: Tensor, v: Tensor, mask: MaskSpec): Promise<PartialAttention>;
  /** Optional: several pieces of one block (block-local rows and keys, each under its own mask) in one call, merged. */
  attendPieces?(q: Tensor, k: Tensor, v: Tensor, pieces: readonly BlockPiece[]): Promise<PartialAttention>;
  close(): Promise<void>;
}

/** The large negative that stands in for -Infinity in masked scores and empty log-sum-exps. */
export const MASKED_SCORE = -1e30;
