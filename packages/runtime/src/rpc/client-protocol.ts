import { SeqparError, type ErrorCode } from '@seqpar/core';
import type { StrategyName } from '@seqpar/strategies';
import type { GenerateSummary } from '@seqpar/model';
import type { RequestStats } from '../api/cluster.js';
import type { ClusterGenerateOptions } from '../api/cluster-generate.js';

/**
 * The channel between a client process (`connectCluster`) and a running coordinator. Each client session is a
 * 2-rank ws transport world: the coordinator's session endpoint is rank 0, the client rank 1 (it dials, so only
 * the coordinator must be reachable), found through the coordinator's client rendezvous. The world inherits the
 * transport's HMAC authentication and heartbeats. Two tags, each FIFO:
 *
 *   coordinator --REPLY---> client : hello  { workers, transport }            (once, when the session opens)
 *                                    result { id, stats, shapes } + out, lse packed
 *                                    partial   { id, header }      (a generated token or prefill progress, in order)
 *                                    generated { id, summary, shapes } + prompt logits packed, if asked
 *                                    error  { id, code, message, exitCode }
 *   client ----REQUEST----> coordinator : attention { id, causal, strategy?, trace, timeoutMs, shapes } + q, k, v
 *                                         generate  { id, modelDir, options, timeoutMs, shapes } + prompt ids
 *                                         cancel    { id }
 */
export const REQUEST_TAG = 'seqpar/client-request';
export const REPLY_TAG = 'seqpar/client-reply';

export const COORDINATOR_SESSION_RANK = 0;
export const CLIENT_SESSION_RANK = 1;

export type ClientRequest =
  | { kind: 'attention'; id: number; causal: boolean; strategy?: StrategyName; trace: boolean; timeoutMs: number; shapes: number[][] }
  | { kind: 'generate'; id: number; modelDir: string; options: GenerateRequestOptions; timeoutMs: number; shapes: number[][] }
  | { kind: 'cancel'; id: number };

/** What a remote generation carries of `cluster.generate`'s options (the rest lives on the client). */
export type GenerateRequestOptions = Omit<ClusterGenerateOptions, 'signal' | 'timeoutMs' | 'onPrefillProgress'>;

export type ClientReply =
  | { kind: 'hello'; workers: number; transport: string }
  | { kind: 'result'; id: number; stats: RequestStats; shapes: number[][] }
  | { kind: 'partial'; id: number; header: { token: number; index: number } | { done: number; total: number } }
  | { kind: 'generated'; id: number; summary: Omit<GenerateSummary, 'promptLogits'>; shapes: number[][] }
  | { kind: 'error'; id: number; code: string; message: string; exitCode: 1 | 2 };

export function errorReply(id: number, error: unknown): ClientReply {
  const typed = error instanceof SeqparError ? error : new SeqparError('ERR_INTERNAL', error instanceof Error ? error.message : String(error));
  return { kind: 'error', id, code: typed.code, message: typed.message, exitCode: typed.exitCode };
}

/** The coordinator's error, rebuilt on the client with the same code and exit code. */
export function replyError(reply: Extract<ClientReply, { kind: 'error' }>): SeqparError {
  return new SeqparError(reply.code as ErrorCode, `coordinator: ${reply.message}`, { exitCode: reply.exitCode === 2 ? 2 : 1 });
}
