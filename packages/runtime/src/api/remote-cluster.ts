import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GENERATE_TIMEOUT_MS, streamGeneration, tokenEvent, type GenerateEvent, type GenerateSummary } from '@seqpar/model';
import { SeqparError, UsageError, type Tensor } from '@seqpar/core';
import { createTransport, type Token, type Transport, type TransportKind } from '@seqpar/transport';
import { CLIENT_ROLE, explainJoinFailure } from '../coordinator-address.js';
import { heartbeatFor } from '../executors/executor.js';
import { splitListen } from '../listen-address.js';
import {
  CLIENT_SESSION_RANK,
  COORDINATOR_SESSION_RANK,
  type AttentionArgs,
  type AttentionReply,
  type GenerateArgs,
  type GeneratedReply,
  type HelloReply,
} from '../rpc/client-protocol.js';
import { RpcCaller, type CallOptions, type CallReply } from '../rpc/rpc-caller.js';
import { checkAttention } from './check-request.js';
import type { AttentionOptions, AttentionResult, ClusterClient, ClusterGenerateOptions } from './cluster-client.js';

export interface ConnectClusterOptions {
  /** host:port where the coordinator takes clients (`CoordinatorHandle.clientAddress`, printed by `seqpar coordinator`). */
  readonly coordinator: string;
  /** The cluster's shared secret. */
  readonly token: Token;
  /** Bound on connecting. Default 30 s; an address where nothing answers fails sooner (ERR_UNREACHABLE, within 5 s). */
  readonly timeoutMs?: number;
  /** Bound on a request whose call gives none. Default 60 s. */
  readonly requestTimeoutMs?: number;
  /** A coordinator that goes silent fails the pending requests within about this long. Default 2000 ms. */
  readonly healthTimeoutMs?: number;
}

/** Two clients arriving together can find the door's one slot taken, which reads like a wrong token: retry a little. */
const AUTH_ATTEMPTS = 3;
const RETRY_DELAY_MS = 200;
/** A coordinator is up before its clients come: an address that refuses or does not resolve is tried this long, for one just starting. */
const REACH_WITHIN_MS = 5000;

/** A cluster that runs in another process (`seqpar coordinator`, `runCoordinator`), driven over its client channel. */
export class RemoteCluster implements ClusterClient {
  private ended: SeqparError | undefined;

  constructor(
    private readonly session: Transport,
    private readonly caller: RpcCaller,
    /** Where the coordinator takes clients. */
    readonly address: string,
    /** Workers in the cluster. */
    readonly workers: number,
    readonly transport: TransportKind,
    private readonly requestTimeoutMs: number,
  ) {}

  async attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Promise<AttentionResult> {
    const { mask } = checkAttention(q, k, v, options, this.workers);
    const args: AttentionArgs = {
      ...mask,
      trace: options.trace ?? false,
      ...(options.strategy ? { strategy: options.strategy } : {}),
      ...(options.ulyssesDegree === undefined ? {} : { ulyssesDegree: options.ulyssesDegree }),
    };
    const reply = await this.call('attention', { ...args }, [q, k, v], {
      timeoutMs: options.timeoutMs ?? this.requestTimeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const [out, lse] = reply.tensors;
    if (!out || !lse) throw new SeqparError('ERR_BAD_FRAME', 'an attention result carries out and lse');
    return { out, lse, stats: (reply.header as unknown as AttentionReply).stats };
  }

  /**
   * Generation on the remote cluster, the same contract as `Cluster.generate`: tokens are yielded as the
   * coordinator streams them; the summary (timings measured on the coordinator) is the generator's return value.
   * `modelDir` is resolved here and must name the model at that path on the coordinator's and every worker's host.
   */
  async *generate(modelDir: string, prompt: readonly number[], options: ClusterGenerateOptions): AsyncGenerator<GenerateEvent, GenerateSummary> {
    const { signal, timeoutMs, onPrefillProgress, ...rest } = options;
    const stop = new AbortController(); // the caller's abort, or the consumer leaving the loop, cancels the request
    const onAbort = () => stop.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) stop.abort();
    const args: GenerateArgs = { modelDir: resolve(modelDir), options: rest };
    try {
      const streamed = yield* streamGeneration(prompt.length, (push) =>
        this.call('generate', { ...args }, [{ data: Float32Array.from(prompt), shape: [prompt.length] }], {
          timeoutMs: timeoutMs ?? GENERATE_TIMEOUT_MS,
          signal: stop.signal,
          onPartial: (header) => ('token' in header ? push(tokenEvent(header)) : onPrefillProgress?.(Number(header.done), Number(header.total))),
        }),
      );
      const { summary } = streamed.result.header as unknown as GeneratedReply;
      const [promptLogits] = streamed.result.tensors;
      return { ...summary, ...(promptLogits ? { promptLogits } : {}) };
    } finally {
      signal?.removeEventListener('abort', onAbort);
      stop.abort();
    }
  }

  /** Leaves the cluster (it keeps running for others); requests still pending fail with ERR_CLOSED. */
  async close(): Promise<void> {
    this.ended ??= new SeqparError('ERR_CLOSED', 'the remote cluster connection is closed');
    this.caller.failAll(this.ended);
    await this.session.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private call(op: string, args: Record<string, unknown>, tensors: Tensor[], options: CallOptions): Promise<CallReply> {
    if (this.ended) return Promise.reject(this.ended);
    return this.caller.call(COORDINATOR_SESSION_RANK, op, args, tensors, options);
  }
}

/** Connects to a running coordinator's client channel; resolves once the coordinator greeted this session. */
export async function connectCluster(options: ConnectClusterOptions): Promise<RemoteCluster> {
  splitListen(options.coordinator);
  if (options.token === undefined || options.token.length === 0) throw new UsageError('connecting to a coordinator needs its token');
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await openSession(options, deadline);
    } catch (error) {
      const code = (error as SeqparError).code;
      const retry = code === 'ERR_AUTH' ? attempt < AUTH_ATTEMPTS : code === 'ERR_PEER_LOST' || code === 'ERR_CLOSED';
      if (!retry || Date.now() + RETRY_DELAY_MS >= deadline) throw explainJoinFailure(error, options.coordinator, CLIENT_ROLE);
      await sleep(RETRY_DELAY_MS);
    }
  }
}

async function openSession(options: ConnectClusterOptions, deadline: number): Promise<RemoteCluster> {
  const healthTimeoutMs = options.healthTimeoutMs ?? 2000;
  const session = await createTransport('ws', {
    rank: CLIENT_SESSION_RANK,
    worldSize: 2,
    token: options.token,
    rendezvous: options.coordinator,
    role: CLIENT_ROLE,
    reachWithinMs: REACH_WITHIN_MS,
    heartbeatMs: heartbeatFor(healthTimeoutMs),
    connectTimeoutMs: Math.max(1, deadline - Date.now()),
  });
  // The coordinator bounds every call by its deadline; the grace bounds a coordinator that stops answering.
  const caller = new RpcCaller(session, { peers: [COORDINATOR_SESSION_RANK], describe: () => `the coordinator at ${options.coordinator}`, graceMs: healthTimeoutMs });
  try {
    const hello = (await caller.call(COORDINATOR_SESSION_RANK, 'hello', {}, [], { timeoutMs: Math.max(1, deadline - Date.now()) })).header as unknown as HelloReply;
    if (!Number.isInteger(hello.workers) || typeof hello.transport !== 'string') throw new SeqparError('ERR_BAD_FRAME', `${options.coordinator} did not greet the session`);
    return new RemoteCluster(session, caller, options.coordinator, hello.workers, hello.transport as TransportKind, options.requestTimeoutMs ?? 60_000);
  } catch (error) {
    await session.close();
    throw error;
  }
}
