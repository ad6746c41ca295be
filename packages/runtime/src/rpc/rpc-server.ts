import { SeqparError, type Tensor } from '@seqpar/core';
import type { Frame, Transport } from '@seqpar/transport';
import type { Logger } from '../logger.js';
import { OrderedSender } from './ordered-sender.js';
import { CALL_DATA_TAG, CALL_TAG, CONTROL_POLL_MS, errorMessage, REPLY_DATA_TAG, REPLY_TAG, type CallMessage } from './rpc-messages.js';
import { receiveTensors, sendTensors, SpareBuffer, type TensorSegments } from './tensor-payload.js';

export interface IncomingCall {
  readonly id: number;
  readonly op: string;
  readonly args: Record<string, unknown>;
  /** Lent until the handler's result is sent: the next call's tensors reuse their memory (copy what must outlive it). */
  readonly tensors: Tensor[];
}

export interface CallScope {
  /** Aborted when the caller cancels the call or the served world goes away. */
  readonly signal: AbortSignal;
  /** What is left of the caller's deadline when the call starts (its tensors have arrived). */
  readonly timeoutMs: number;
  /** Streams a partial reply ahead of the result. */
  readonly emit: (header: Record<string, unknown>) => void;
}

export interface CallResult {
  readonly header?: Record<string, unknown>;
  readonly tensors?: readonly (Tensor | TensorSegments)[];
  readonly stats?: unknown;
  readonly spans?: unknown;
  /** Called once the result's tensors are sent: their memory may be reused. */
  readonly sent?: () => void;
}

export type CallHandler = (call: IncomingCall, scope: CallScope) => Promise<CallResult>;

/** Why serving ended: the caller said reset or shutdown, or its connection went away (or `signal` stopped it). */
export type ServeOutcome = 'reset' | 'shutdown' | 'lost';

export interface ServeOptions {
  readonly signal?: AbortSignal;
  readonly log: Logger;
  /**
   * Which of a call's tensors may stay in the frames they arrived in (shm slots) until the call is answered,
   * instead of being copied out (receiveTensors' `lend`): those its handler reads in place only.
   */
  readonly lendsTensors?: (op: string, args: Readonly<Record<string, unknown>>) => readonly number[];
}

/**
 * The called end of the request path: reads calls from `caller` (each with its tensors), runs them side by side
 * with `handler`, and sends each one's result or typed error back. A cancelled call is aborted and not answered.
 * When serving ends, every call still running is aborted and waited for.
 */
export async function serveCalls(transport: Transport, caller: number, handler: CallHandler, options: ServeOptions): Promise<ServeOutcome> {
  const active = new Map<number, { controller: AbortController; done: Promise<void> }>();
  const sender = new OrderedSender();
  const spare = new SpareBuffer();
  const stopAll = () => active.forEach((call) => call.controller.abort());
  options.signal?.addEventListener('abort', stopAll, { once: true });
  try {
    for (;;) {
      let frame: Frame;
      try {
        frame = await transport.recv(caller, CALL_TAG, { timeoutMs: CONTROL_POLL_MS, ...(options.signal ? { signal: options.signal } : {}) });
      } catch (error) {
        if ((error as SeqparError).code === 'ERR_TIMEOUT') continue;
        if (options.signal?.aborted) return 'shutdown';
        options.log.info({ code: (error as SeqparError).code, reason: (error as Error).message }, 'lost the caller');
        return 'lost';
      }
      const message = frame.header as CallMessage;
      if (message.kind === 'reset' || message.kind === 'shutdown') return message.kind;
      if (message.kind === 'cancel') {
        active.get(message.id)?.controller.abort();
        continue;
      }
      if (message.kind !== 'call' || !Number.isInteger(message.id) || !(Number.isFinite(message.timeoutMs) && message.timeoutMs > 0)) {
        options.log.warn({ kind: (message as { kind?: unknown }).kind }, 'malformed call: dropping the connection');
        return 'lost';
      }
      const arrived = Date.now();
      const controller = new AbortController();
      const lent: Frame[] = [];
      const releaseLent = (): void => lent.forEach((frame) => frame[Symbol.dispose]());
      let tensors: Tensor[];
      try {
        const lend = options.lendsTensors ? { lend: { frames: lent, indices: options.lendsTensors(message.op, message.args ?? {}) } } : {};
        tensors = await receiveTensors(transport, caller, CALL_DATA_TAG, message, { timeoutMs: message.timeoutMs, signal: controller.signal }, { spare, ...lend });
      } catch (error) {
        releaseLent();
        // Its chunks are missing or malformed: the stream is out of step, so this connection is done.
        await sender.run(() => transport.send(caller, REPLY_TAG, errorMessage(message.id, error))).catch(() => undefined);
        options.log.warn({ err: error, request: message.id }, 'could not read a call: dropping the connection');
        return 'lost';
      }
      const call = { id: message.id, op: message.op, args: message.args ?? {}, tensors };
      const done = answer(transport, caller, sender, call, controller.signal, message.timeoutMs - (Date.now() - arrived), handler, options.log)
        .then((answered) => {
          if (answered) spare.give(tensors);
        })
        .finally(() => {
          releaseLent();
          active.delete(message.id);
        });
      active.set(message.id, { controller, done });
    }
  } finally {
    options.signal?.removeEventListener('abort', stopAll);
    stopAll();
    await Promise.all([...active.values()].map((call) => call.done));
  }
}

async function answer(
  transport: Transport,
  caller: number,
  sender: OrderedSender,
  call: IncomingCall,
  signal: AbortSignal,
  timeoutMs: number,
  handler: CallHandler,
  log: Logger,
): Promise<boolean> {
  const emit = (header: Record<string, unknown>) => void sender.run(() => transport.send(caller, REPLY_TAG, { kind: 'partial', id: call.id, header })).catch(() => undefined);
  try {
    if (timeoutMs <= 0) throw new SeqparError('ERR_TIMEOUT', `${call.op} request ran out of time before it started`);
    const result = await handler(call, { signal, timeoutMs, emit });
    if (signal.aborted) return false;
    const header = {
      kind: 'result',
      id: call.id,
      header: result.header ?? {},
      ...(result.stats === undefined ? {} : { stats: result.stats }),
      ...(result.spans === undefined ? {} : { spans: result.spans }),
    };
    await sender.run(() => sendTensors(transport, caller, REPLY_TAG, REPLY_DATA_TAG, header, result.tensors ?? []));
    result.sent?.();
    return true;
  } catch (error) {
    if (signal.aborted) return false; // cancelled or dropped: nobody waits for this answer
    // A typed error goes back to the caller, who reports it; only a bug is worth a stack in this process's log.
    if (error instanceof SeqparError && error.code !== 'ERR_INTERNAL') log.info({ code: error.code, reason: error.message, request: call.id, op: call.op }, 'request failed');
    else log.error({ err: error, request: call.id, op: call.op }, 'request failed');
    await sender.run(() => transport.send(caller, REPLY_TAG, errorMessage(call.id, error))).catch(() => undefined);
    return false;
  }
}
