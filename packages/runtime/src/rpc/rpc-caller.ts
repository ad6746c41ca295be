import { SeqparError, type Tensor } from '@seqpar/core';
import type { Frame, Transport } from '@seqpar/transport';
import { OrderedSender } from './ordered-sender.js';
import { CALL_DATA_TAG, CALL_TAG, CONTROL_POLL_MS, errorFromMessage, REPLY_DATA_TAG, REPLY_TAG, type CallMessage, type ReplyMessage } from './rpc-messages.js';
import { discardTensors, receiveTensors, sendTensors, type TensorSegments } from './tensor-payload.js';

export interface CallOptions {
  /** The call's deadline, in ms from now. The callee gets what is left of it when the call arrives. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Partial replies the callee streams ahead of its result, in order. */
  readonly onPartial?: (header: Record<string, unknown>) => void;
  /** Where reply tensors go (by index) instead of fresh tensors, e.g. a rank's rows of a gathered result. */
  readonly replyInto?: readonly (TensorSegments | undefined)[];
}

export interface CallReply {
  readonly header: Record<string, unknown>;
  /** Undefined where the tensor was written into `replyInto`. */
  readonly tensors: (Tensor | undefined)[];
  readonly stats?: unknown;
  readonly spans?: unknown;
}

export interface RpcCallerOptions {
  /** Peers this end calls; one receive loop each. */
  readonly peers: readonly number[];
  /** Names a peer in errors ("rank 2", "the coordinator at host:port"). */
  readonly describe: (peer: number) => string;
  /**
   * How long past its deadline a call may still be answered before the caller gives up on it itself: the callee
   * enforces the deadline, this bounds a callee that went silent.
   */
  readonly graceMs: number;
  /** A peer's connection failed or its reply stream broke; its pending calls are already rejected. */
  readonly onLost?: (peer: number, error: SeqparError) => void;
}

interface PendingCall {
  readonly peer: number;
  readonly op: string;
  readonly options: CallOptions;
  /** When the caller stops waiting: the call's deadline plus the grace. */
  readonly giveUpAt: number;
  resolve(reply: CallReply): void;
  reject(error: SeqparError): void;
}

/**
 * The calling end of the request path: one table of pending calls, one receive loop per peer, one abort bridge
 * (an aborted call is cancelled at the callee) and one deadline per call.
 */
export class RpcCaller {
  private nextId = 0;
  private readonly pending = new Map<number, PendingCall>();
  private readonly senders = new Map<number, OrderedSender>();
  private readonly lost = new Map<number, SeqparError>();

  constructor(
    private readonly transport: Transport,
    private readonly options: RpcCallerOptions,
  ) {
    for (const peer of options.peers) {
      this.senders.set(peer, new OrderedSender());
      void this.readLoop(peer);
    }
  }

  /** Runs `op` at `peer` with `tensors` and answers with its result; rejects with the callee's typed error. */
  call(peer: number, op: string, args: Record<string, unknown>, tensors: readonly (Tensor | TensorSegments)[], options: CallOptions): Promise<CallReply> {
    const sender = this.senders.get(peer);
    if (!sender) return Promise.reject(new SeqparError('ERR_INTERNAL', `${op} request to rank ${peer}, which this caller does not reach`));
    const gone = this.lost.get(peer);
    if (gone) return Promise.reject(gone);
    if (options.signal?.aborted) return Promise.reject(new SeqparError('ERR_ABORTED', `${op} request was aborted before it started`));
    const id = this.nextId++;
    return new Promise<CallReply>((resolve, reject) => {
      const onAbort = () => {
        if (this.settle(id, new SeqparError('ERR_ABORTED', `${op} request was aborted`))) void this.notify(peer, { kind: 'cancel', id });
      };
      const timer = setTimeout(
        () => this.settle(id, new SeqparError('ERR_TIMEOUT', `${op} request got no answer from ${this.options.describe(peer)} within ${options.timeoutMs} ms`)),
        options.timeoutMs + this.options.graceMs,
      );
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const unlink = () => (clearTimeout(timer), options.signal?.removeEventListener('abort', onAbort));
      this.pending.set(id, {
        peer,
        op,
        options,
        giveUpAt: Date.now() + options.timeoutMs + this.options.graceMs,
        resolve: (reply) => (unlink(), resolve(reply)),
        reject: (error) => (unlink(), reject(error)),
      });
      const header = { kind: 'call', id, op, args, timeoutMs: options.timeoutMs } as const;
      sender.run(() => sendTensors(this.transport, peer, CALL_TAG, CALL_DATA_TAG, header, tensors)).catch((error: SeqparError) => this.settle(id, this.lostError(peer, error)));
    });
  }

  /** A message without an answer (cancel, reset, shutdown), in order with the calls to `peer`. */
  notify(peer: number, message: Exclude<CallMessage, { kind: 'call' }>): Promise<void> {
    const sender = this.senders.get(peer);
    if (!sender) return Promise.reject(new SeqparError('ERR_INTERNAL', `${message.kind} to rank ${peer}, which this caller does not reach`));
    return sender.run(() => this.transport.send(peer, CALL_TAG, message));
  }

  /** Rejects every pending call with `error` (the world they ran in is going away). */
  failAll(error: SeqparError): void {
    for (const id of [...this.pending.keys()]) this.settle(id, error);
  }

  private async readLoop(peer: number): Promise<void> {
    while (!this.lost.has(peer)) {
      let frame: Frame;
      try {
        frame = await this.transport.recv(peer, REPLY_TAG, { timeoutMs: CONTROL_POLL_MS });
      } catch (error) {
        if ((error as SeqparError).code === 'ERR_TIMEOUT') continue;
        return this.lose(peer, error as SeqparError);
      }
      const message = frame.header as ReplyMessage;
      const call = this.pending.get(message.id);
      if (message.kind === 'partial') call?.options.onPartial?.(message.header);
      else if (message.kind === 'error') this.settle(message.id, errorFromMessage(message, this.options.describe(peer)));
      else if (message.kind === 'result') {
        // A reply's chunks follow it at once; a reply nobody waits for any more is read and dropped all the same.
        try {
          if (!call) await discardTensors(this.transport, peer, REPLY_DATA_TAG, message, { timeoutMs: CONTROL_POLL_MS });
          else {
            const timeoutMs = Math.max(1, call.giveUpAt - Date.now());
            const tensors = await receiveTensors(this.transport, peer, REPLY_DATA_TAG, message, { timeoutMs }, { into: call.options.replyInto ?? [] });
            const reply = {
              header: message.header ?? {},
              tensors,
              ...(message.stats === undefined ? {} : { stats: message.stats }),
              ...(message.spans === undefined ? {} : { spans: message.spans }),
            };
            this.take(message.id)?.resolve(reply);
          }
        } catch (error) {
          return this.lose(peer, error as SeqparError); // its reply stream is out of step
        }
      } else return this.lose(peer, new SeqparError('ERR_BAD_FRAME', `unknown reply kind '${String((message as { kind?: unknown }).kind)}'`));
    }
  }

  private lose(peer: number, error: SeqparError): void {
    if (this.lost.has(peer)) return;
    const lost = this.lostError(peer, error);
    this.lost.set(peer, lost);
    for (const [id, call] of [...this.pending]) if (call.peer === peer) this.settle(id, lost);
    this.options.onLost?.(peer, error);
  }

  /** The error a call to `peer` ends with when its connection fails: it always names the peer. */
  private lostError(peer: number, error: SeqparError): SeqparError {
    if (error.code === 'ERR_CLOSED' || error.code === 'ERR_ABORTED' || error.code === 'ERR_TIMEOUT') {
      return new SeqparError(error.code, `${this.options.describe(peer)}: ${error.message}`, { cause: error });
    }
    return new SeqparError(error.code === 'ERR_BAD_FRAME' ? 'ERR_BAD_FRAME' : 'ERR_PEER_LOST', `${this.options.describe(peer)} went away: ${error.message}`, { cause: error });
  }

  private settle(id: number, error: SeqparError): boolean {
    const call = this.take(id);
    call?.reject(error);
    return call !== undefined;
  }

  private take(id: number): PendingCall | undefined {
    const call = this.pending.get(id);
    this.pending.delete(id);
    return call;
  }
}
