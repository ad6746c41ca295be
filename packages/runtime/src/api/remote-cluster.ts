import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GENERATE_TIMEOUT_MS, streamGeneration, type GenerateEvent, type GenerateSummary } from '@seqpar/model';
import { attentionShape, SeqparError, UsageError, type Tensor } from '@seqpar/core';
import { createTransport, type Frame, type Token, type Transport } from '@seqpar/transport';
import { CLIENT_SESSION_RANK, COORDINATOR_SESSION_RANK, replyError, REPLY_TAG, REQUEST_TAG, type ClientReply, type ClientRequest } from '../rpc/client-protocol.js';
import type { AttentionOptions, AttentionResult } from './cluster.js';
import type { ClusterGenerateOptions } from './cluster-generate.js';
import { CONTROL_POLL_MS } from '../rpc/control-messages.js';
import { heartbeatFor } from '../executors/executor.js';
import { splitListen } from '../listen-address.js';
import { bytesOf, packTensors, unpackTensors } from '../rpc/tensor-payload.js';

export interface ConnectClusterOptions {
  /** host:port where the coordinator takes clients (`CoordinatorHandle.clientAddress`, printed by `seqpar coordinator`). */
  readonly coordinator: string;
  /** The cluster's shared secret. */
  readonly token: Token;
  /** Bound on connecting. Default 30 s. */
  readonly timeoutMs?: number;
  /** Bound on a request whose call gives none. Default 60 s. */
  readonly requestTimeoutMs?: number;
  /** A coordinator that goes silent fails the pending requests within about this long. Default 2000 ms. */
  readonly healthTimeoutMs?: number;
}

type FinalReply = Extract<ClientReply, { kind: 'result' | 'generated' }>;
type PartialHeader = Extract<ClientReply, { kind: 'partial' }>['header'];

interface PendingRequest {
  resolve(answer: { reply: FinalReply; payload: Uint8Array }): void;
  reject(error: Error): void;
  onPartial?(header: PartialHeader): void;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Two clients arriving together can find the door's one slot taken, which reads like a wrong token: retry a little. */
const AUTH_ATTEMPTS = 3;
const RETRY_DELAY_MS = 200;

/** A cluster that runs in another process (`seqpar coordinator`, `runCoordinator`), driven over its client channel. */
export class RemoteCluster {
  private nextId = 0;
  private readonly pending = new Map<number, PendingRequest>();
  private ended: SeqparError | undefined;

  constructor(
    private readonly session: Transport,
    /** Where the coordinator takes clients. */
    readonly address: string,
    /** Workers in the cluster. */
    readonly workers: number,
    /** How the cluster's workers exchange blocks. */
    readonly transport: string,
    private readonly options: Required<Pick<ConnectClusterOptions, 'requestTimeoutMs' | 'healthTimeoutMs'>>,
  ) {
    void this.readLoop();
  }

  /** Exact attention of q [S, Hq, D] over k, v [S, Hkv, D] on the remote cluster; the same contract as `Cluster.attention`. */
  async attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Promise<AttentionResult> {
    attentionShape(q, k, v);
    const request = { kind: 'attention', causal: options.causal ?? false, trace: options.trace ?? false, ...(options.strategy ? { strategy: options.strategy } : {}) } as const;
    const { reply, payload } = await this.request(request, [q, k, v], options);
    const [out, lse] = unpackTensors(reply.shapes, payload);
    if (reply.kind !== 'result' || !out || !lse) throw new SeqparError('ERR_BAD_FRAME', 'an attention result carries out and lse');
    return { out, lse, stats: reply.stats };
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
    const request = { kind: 'generate', modelDir: resolve(modelDir), options: rest } as const;
    try {
      const streamed = yield* streamGeneration(prompt.length, (push) =>
        this.request(request, [{ data: Float32Array.from(prompt), shape: [prompt.length] }], { timeoutMs: timeoutMs ?? GENERATE_TIMEOUT_MS, signal: stop.signal }, (header) =>
          'token' in header ? push(header) : onPrefillProgress?.(header.done, header.total),
        ),
      );
      const { reply, payload } = streamed.result;
      if (reply.kind !== 'generated') throw new SeqparError('ERR_BAD_FRAME', 'a generate request was answered with an attention result');
      const [promptLogits] = unpackTensors(reply.shapes, payload);
      return { ...reply.summary, ...(promptLogits ? { promptLogits } : {}) };
    } finally {
      signal?.removeEventListener('abort', onAbort);
      stop.abort();
    }
  }

  /** Sends one request with its tensors and waits (bounded, abortable) for its final reply; partials go to `onPartial`. */
  private async request(
    body: DistributiveOmit<ClientRequest, 'id' | 'timeoutMs' | 'shapes'>,
    tensors: Tensor[],
    options: { timeoutMs?: number; signal?: AbortSignal },
    onPartial?: (header: PartialHeader) => void,
  ): Promise<{ reply: FinalReply; payload: Uint8Array }> {
    if (this.ended) throw this.ended;
    if (options.signal?.aborted) throw new SeqparError('ERR_ABORTED', `${body.kind} request was aborted before it started`);
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs;
    const packed = packTensors(tensors);
    const request = { ...body, id, timeoutMs, shapes: packed.shapes } as ClientRequest;
    const answer = new Promise<{ reply: FinalReply; payload: Uint8Array }>((resolve, reject) => this.pending.set(id, { resolve, reject, ...(onPartial ? { onPartial } : {}) }));
    // The coordinator enforces timeoutMs itself; this deadline adds the health bound so that even a coordinator
    // that stops answering cannot leave the caller waiting.
    const timer = setTimeout(() => this.settle(id, new SeqparError('ERR_TIMEOUT', `${body.kind} request got no answer from ${this.address} within ${timeoutMs} ms`)), timeoutMs + this.options.healthTimeoutMs);
    const onAbort = () => {
      this.settle(id, new SeqparError('ERR_ABORTED', `${body.kind} request was aborted`));
      void this.session.send(COORDINATOR_SESSION_RANK, REQUEST_TAG, { kind: 'cancel', id }).catch(() => undefined);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      this.session.send(COORDINATOR_SESSION_RANK, REQUEST_TAG, request, bytesOf(packed.payload)).catch((error: SeqparError) => this.settle(id, this.goneError(error)));
      return await answer;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Leaves the cluster (it keeps running for others); requests still pending fail with ERR_CLOSED. */
  async close(): Promise<void> {
    this.end(new SeqparError('ERR_CLOSED', 'the remote cluster connection is closed'));
    await this.session.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async readLoop(): Promise<void> {
    while (!this.ended) {
      let frame: Frame;
      try {
        frame = await this.session.recv(COORDINATOR_SESSION_RANK, REPLY_TAG, { timeoutMs: CONTROL_POLL_MS });
      } catch (error) {
        if ((error as SeqparError).code !== 'ERR_TIMEOUT') this.end(this.goneError(error as SeqparError));
        continue;
      }
      const reply = frame.header as ClientReply;
      if (reply.kind === 'result' || reply.kind === 'generated') this.take(reply.id)?.resolve({ reply, payload: frame.payload });
      else if (reply.kind === 'partial') this.pending.get(reply.id)?.onPartial?.(reply.header);
      else if (reply.kind === 'error') this.settle(reply.id, replyError(reply));
    }
  }

  private settle(id: number, error: SeqparError): void {
    this.take(id)?.reject(error);
  }

  private take(id: number): PendingRequest | undefined {
    const request = this.pending.get(id);
    this.pending.delete(id);
    return request;
  }

  private end(error: SeqparError): void {
    this.ended ??= error;
    for (const id of [...this.pending.keys()]) this.settle(id, this.ended);
  }

  private goneError(error: SeqparError): SeqparError {
    if (this.ended) return this.ended;
    const code = error.code === 'ERR_CLOSED' ? 'ERR_CLOSED' : 'ERR_PEER_LOST';
    return new SeqparError(code, `the coordinator at ${this.address} went away: ${error.message}`, { cause: error });
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
      if (!retry || Date.now() + RETRY_DELAY_MS >= deadline) throw error;
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
    heartbeatMs: heartbeatFor(healthTimeoutMs),
    connectTimeoutMs: Math.max(1, deadline - Date.now()),
  });
  try {
    const hello = (await session.recv(COORDINATOR_SESSION_RANK, REPLY_TAG, { timeoutMs: Math.max(1, deadline - Date.now()) })).header as ClientReply;
    if (hello.kind !== 'hello') throw new SeqparError('ERR_BAD_FRAME', `${options.coordinator} did not greet the session`);
    return new RemoteCluster(session, options.coordinator, hello.workers, hello.transport, { requestTimeoutMs: options.requestTimeoutMs ?? 60_000, healthTimeoutMs });
  } catch (error) {
    await session.close();
    throw error;
  }
}
