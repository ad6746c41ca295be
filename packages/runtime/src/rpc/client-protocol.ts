import type { GenerateSummary } from '@seqpar/model';
import type { ClusterGenerateOptions, RequestStats } from '../api/cluster-client.js';

/**
 * The calls a client process (`connectCluster`) makes of a running coordinator, over the request path of
 * rpc-messages.ts. Each client session is a 2-rank ws transport world: the coordinator's session endpoint is
 * rank 0, the client rank 1 (it dials, so only the coordinator must be reachable), found through the
 * coordinator's client door. The world inherits the transport's HMAC authentication and heartbeats.
 *
 *   op          args                        tensors in       result header          tensors out       partials
 *   hello       {}                          -                { workers, transport } -                 -
 *   attention   { causal, documents?,       q, k, v         { stats }              out, lse          -
 *                 window?, strategy?,
 *                 ulyssesDegree?, trace }
 *   generate    { modelDir, options }       prompt ids       { summary }            prompt logits?    { token, index } | { done, total }
 */
export const COORDINATOR_SESSION_RANK = 0;
export const CLIENT_SESSION_RANK = 1;

export interface HelloReply {
  readonly workers: number;
  readonly transport: string;
}

export interface AttentionArgs {
  readonly causal: boolean;
  readonly documents?: readonly number[];
  readonly window?: number;
  readonly strategy?: string;
  readonly ulyssesDegree?: number;
  readonly trace: boolean;
}

export interface AttentionReply {
  readonly stats: RequestStats;
}

/** What a remote generation carries of `cluster.generate`'s options (the rest lives on the client). */
export type GenerateRequestOptions = Omit<ClusterGenerateOptions, 'signal' | 'timeoutMs' | 'onPrefillProgress'>;

export interface GenerateArgs {
  readonly modelDir: string;
  readonly options: GenerateRequestOptions;
}

export interface GeneratedReply {
  readonly summary: Omit<GenerateSummary, 'promptLogits'>;
}
