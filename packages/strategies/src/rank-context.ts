import type { BlockAttentionKernel, PartialAttention, RankRecorder, SequenceMask, Tensor } from '@seqpar/core';
import type { Transport } from '@seqpar/transport';

/** What one rank runs a strategy with: its peers, its compute, and where it books time. */
export interface RankContext {
  readonly rank: number;
  readonly worldSize: number;
  /** Data plane among the strategy's ranks 0..worldSize-1. */
  readonly transport: Transport;
  readonly kernel: BlockAttentionKernel;
  readonly recorder: RankRecorder;
  /** Prefix that makes this request's tags unique when requests share a transport. */
  readonly tagPrefix: string;
  /** Bound on every receive. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /**
   * Makes the accumulator a rank's result folds into (default: core's createPartial, fresh memory). A worker
   * passes one that reuses the memory of its previous result, which was sent before this request started.
   */
  readonly createPartial?: (rows: number, heads: number, dim: number) => PartialAttention;
}

/** One rank's share of a self-attention request, already laid out as the strategy's layout asks (under its mask). */
export interface RankInput extends SequenceMask {
  /** Local queries [Sr, Hq, D]; for Ulysses the contiguous shard. */
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  /** Global sequence length S. */
  readonly seq: number;
  /** usp: ranks per all-to-all group. */
  readonly ulyssesDegree?: number;
}
