import { attentionShape, SeqparError } from '@seqpar/core';
import type { Frame, Transport } from '@seqpar/transport';
import { errorReply, CLIENT_SESSION_RANK, REPLY_TAG, REQUEST_TAG, type ClientReply, type ClientRequest } from '../rpc/client-protocol.js';
import type { Cluster } from '../api/cluster.js';
import { CONTROL_POLL_MS } from '../rpc/control-messages.js';
import type { Logger } from '../logger.js';
import { bytesOf, packTensors, unpackTensors } from '../rpc/tensor-payload.js';

/**
 * The coordinator's side of one client: every request the client sends goes to the cluster (so through its
 * bounded queue, timeouts and failure handling) and its answer goes back. When the client leaves, whatever it
 * still had queued or running is aborted, so the workers drop it.
 */
export class ClientSession {
  /** Settles when the client has gone (or the session was closed). */
  readonly done: Promise<void>;
  private readonly running = new Map<number, AbortController>();
  private closed = false;

  constructor(
    private readonly transport: Transport,
    private readonly cluster: Cluster,
    private readonly log: Logger,
  ) {
    this.done = this.serve();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.transport.close();
    await this.done;
  }

  private async serve(): Promise<void> {
    try {
      await this.reply({ kind: 'hello', workers: this.cluster.workers, transport: this.cluster.transport });
      while (!this.closed) {
        let frame: Frame;
        try {
          frame = await this.transport.recv(CLIENT_SESSION_RANK, REQUEST_TAG, { timeoutMs: CONTROL_POLL_MS });
        } catch (error) {
          if ((error as SeqparError).code === 'ERR_TIMEOUT') continue;
          throw error;
        }
        this.onRequest(frame);
      }
    } catch (error) {
      if (!this.closed) this.log.info({ err: error }, 'client session ended');
    } finally {
      for (const controller of this.running.values()) controller.abort();
      this.running.clear();
      await this.transport.close();
    }
  }

  private onRequest(frame: Frame): void {
    const request = frame.header as ClientRequest;
    if (!Number.isInteger(request.id)) throw new SeqparError('ERR_BAD_FRAME', 'client request without an integer id');
    if (request.kind === 'cancel') return this.running.get(request.id)?.abort();
    if (request.kind !== 'attention' && request.kind !== 'generate') {
      const { id, kind } = request as { id: number; kind: unknown };
      return void this.reply(errorReply(id, new SeqparError('ERR_BAD_FRAME', `unknown client request '${String(kind)}'`)));
    }
    const controller = new AbortController();
    this.running.set(request.id, controller);
    const answer = request.kind === 'attention' ? this.attention(request, frame.payload, controller.signal) : this.generate(request, frame.payload, controller.signal);
    void answer
      .then(
        (reply) => this.reply(reply.reply, reply.payload),
        (error: unknown) => this.reply(errorReply(request.id, error)),
      )
      .finally(() => this.running.delete(request.id));
  }

  private async attention(request: Extract<ClientRequest, { kind: 'attention' }>, payload: Uint8Array, signal: AbortSignal) {
    const [q, k, v, ...extra] = unpackTensors(request.shapes, payload);
    if (!q || !k || !v || extra.length) throw new SeqparError('ERR_BAD_FRAME', 'an attention request carries exactly q, k and v');
    attentionShape(q, k, v);
    if (!(Number.isFinite(request.timeoutMs) && request.timeoutMs > 0)) throw new SeqparError('ERR_BAD_FRAME', 'an attention request needs a positive timeoutMs');
    const { out, lse, stats } = await this.cluster.attention(q, k, v, {
      causal: request.causal === true,
      trace: request.trace === true,
      timeoutMs: request.timeoutMs,
      signal,
      ...(request.strategy ? { strategy: request.strategy } : {}),
    });
    const packed = packTensors([out, lse]);
    const reply: ClientReply = { kind: 'result', id: request.id, stats, shapes: packed.shapes };
    return { reply, payload: bytesOf(packed.payload) };
  }

  /** Runs a generation on the cluster, streaming its tokens and prefill progress to the client as partial replies. */
  private async generate(request: Extract<ClientRequest, { kind: 'generate' }>, payload: Uint8Array, signal: AbortSignal) {
    const [ids, ...extra] = unpackTensors(request.shapes, payload);
    if (!ids || extra.length || typeof request.modelDir !== 'string') throw new SeqparError('ERR_BAD_FRAME', 'a generate request carries a model directory and exactly the prompt ids');
    if (!(Number.isFinite(request.timeoutMs) && request.timeoutMs > 0)) throw new SeqparError('ERR_BAD_FRAME', 'a generate request needs a positive timeoutMs');
    const run = this.cluster.generate(request.modelDir, Array.from(ids.data), {
      ...request.options,
      timeoutMs: request.timeoutMs,
      signal,
      onPrefillProgress: (done, total) => void this.reply({ kind: 'partial', id: request.id, header: { done, total } }),
    });
    for (;;) {
      const next = await run.next();
      if (next.done) {
        const { promptLogits, ...summary } = next.value;
        const packed = packTensors(promptLogits ? [promptLogits] : []);
        const reply: ClientReply = { kind: 'generated', id: request.id, summary, shapes: packed.shapes };
        return { reply, payload: bytesOf(packed.payload) };
      }
      void this.reply({ kind: 'partial', id: request.id, header: next.value });
    }
  }

  /** Best effort: a client that has gone cannot be answered, and its session is ending anyway. */
  private async reply(reply: ClientReply, payload?: Uint8Array): Promise<void> {
    await this.transport.send(CLIENT_SESSION_RANK, REPLY_TAG, reply, payload).catch((error: unknown) => {
      if (!this.closed) this.log.info({ err: error }, 'could not answer a client');
    });
  }
}
