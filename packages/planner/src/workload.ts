import { checkSequenceMask, sequencePairs, UsageError } from '@seqpar/core';

/** One attention request as the planner sees it: `seq` new tokens attending to `prefix` cached ones and themselves. */
export interface AttentionWorkload {
  readonly seq: number;
  readonly prefix: number;
  readonly causal: boolean;
  /** Packed documents' lengths (sum `seq`), without a prefix. */
  readonly documents?: readonly number[];
  /** Sliding window (causal), without a prefix. */
  readonly window?: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Bytes per element of q, k, v and out on the wire; lse always travels as float32. */
  readonly bytesPerElement: number;
}

export const DEFAULT_HEADS = { heads: 8, kvHeads: 8, headDim: 64 } as const;

export function checkWorkload(w: AttentionWorkload): void {
  const counts = { seq: w.seq, heads: w.heads, kvHeads: w.kvHeads, headDim: w.headDim, bytesPerElement: w.bytesPerElement };
  for (const [name, value] of Object.entries(counts)) {
    if (!Number.isInteger(value) || value < 1) throw new UsageError(`${name} must be a positive integer (got ${value})`);
  }
  if (!Number.isInteger(w.prefix) || w.prefix < 0) throw new UsageError(`prefix must be a non-negative integer (got ${w.prefix})`);
  if (w.heads % w.kvHeads !== 0) throw new UsageError(`heads (${w.heads}) must be a multiple of kv heads (${w.kvHeads})`);
  checkSequenceMask(w.seq, w);
  if (w.prefix > 0 && (w.documents || w.window !== undefined)) throw new UsageError('documents and a window are priced for requests without a cached prefix');
}

/** FLOPs of attention over `pairs` visible pairs: QK^T and PV are each 2·D per pair and query head. */
export const attentionFlops = (pairs: number, w: AttentionWorkload): number => 4 * pairs * w.headDim * w.heads;

/** Visible pairs of the whole request: `seq` queries after `prefix` cached keys, under its documents and window. */
export function totalPairs(w: AttentionWorkload): number {
  return w.seq * w.prefix + sequencePairs(w.seq, w);
}

/** Visible pairs of the request under a causal mask: the new tokens' triangles (the cached prefix is seen whole). */
export const maskedPairs = (w: AttentionWorkload): number => (w.causal ? sequencePairs(w.seq, w) : 0);

/** Bytes of `rows` tokens of q (or out) / of k and v together / of a partial result (out plus float32 lse). */
export const qBytes = (rows: number, w: AttentionWorkload): number => rows * w.heads * w.headDim * w.bytesPerElement;
export const kvBytes = (rows: number, w: AttentionWorkload): number => 2 * rows * w.kvHeads * w.headDim * w.bytesPerElement;
export const partialBytes = (rows: number, w: AttentionWorkload): number => qBytes(rows, w) + rows * w.heads * 4;
/** What a kernel call over `queryRows` x `keyRows` streams from memory: q, k, v in, out back. */
export const blockBytes = (queryRows: number, keyRows: number, w: AttentionWorkload): number => 2 * qBytes(queryRows, w) + kvBytes(keyRows, w);
/** The request's float32 tensors on their way to the ranks and back: q, k, v of the new tokens, out and lse. */
export const requestBytes = (w: AttentionWorkload): number => 4 * w.seq * (2 * w.heads * w.headDim + 2 * w.kvHeads * w.headDim + w.heads);
/** A merge reads the accumulator and the block result and writes the accumulator, in float32. */
export const mergeBytes = (rows: number, w: Pick<AttentionWorkload, 'heads' | 'headDim'>): number => 3 * rows * w.heads * (w.headDim + 1) * 4;
