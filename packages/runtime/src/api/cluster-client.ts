import type { RankStats, Tensor, TraceSpan } from '@seqpar/core';
import type { GenerateEvent, GenerateSummary, GenerateOptions } from '@seqpar/model';
import type { StrategyName } from '@seqpar/strategies';
import type { TransportKind } from '@seqpar/transport';

export interface AttentionOptions {
  readonly causal?: boolean;
  /** Lengths of documents packed back to back (sum S): a query sees keys of its own document only. */
  readonly documents?: readonly number[];
  /** Sliding window W (needs causal): query i sees keys i-W < j <= i. */
  readonly window?: number;
  /** Default 'ring' (or 'single' with one worker). */
  readonly strategy?: StrategyName;
  /** usp: ranks per all-to-all group (U of N = U x R); must divide the kv heads and the workers. */
  readonly ulyssesDegree?: number;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  /** Record per-rank trace spans (returned in stats.spans). */
  readonly trace?: boolean;
}

/** What `--json` reports about a request. */
export interface RequestStats {
  readonly strategy: StrategyName;
  /** Ranks that took part. */
  readonly workers: number;
  readonly transport: TransportKind;
  readonly seq: number;
  readonly wallMs: number;
  readonly ranks: RankStats[];
  readonly spans?: TraceSpan[][];
}

export interface AttentionResult {
  /** [S, Hq, D] */
  readonly out: Tensor;
  /** [Hq, S] */
  readonly lse: Tensor;
  readonly stats: RequestStats;
}

/** `cluster.generate` options: the in-process generation's, less what the cluster fixes (its workers, their devices). */
export type ClusterGenerateOptions = Omit<GenerateOptions, 'workers' | 'execution'> & {
  /**
   * Query rows one compute call of this request's prefill takes at most (a multiple of 64): other requests on
   * the same workers wait at most one such call behind it. Unset: the pieces the kernel workspace budget allows.
   */
  readonly prefillChunk?: number;
};

/**
 * What a program holds of a cluster, whether its workers run under this process (`createCluster`) or under a
 * coordinator elsewhere (`connectCluster`): the same requests, checks, errors and results.
 */
export interface ClusterClient extends AsyncDisposable {
  /** Workers in the cluster. */
  readonly workers: number;
  /** How the workers exchange blocks. */
  readonly transport: TransportKind;
  /** Exact attention of q [S, Hq, D] over k, v [S, Hkv, D], sharded over the workers by `strategy`. */
  attention(q: Tensor, k: Tensor, v: Tensor, options?: AttentionOptions): Promise<AttentionResult>;
  /** Generation with one rank per worker: an async iterable of tokens returning the summary. */
  generate(modelDir: string, prompt: readonly number[], options: ClusterGenerateOptions): AsyncGenerator<GenerateEvent, GenerateSummary>;
  close(): Promise<void>;
}
