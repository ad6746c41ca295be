import { SeqparError } from '@seqpar/core';
import { DeadlineTimer, type Deadline } from './deadline-timer.js';
import { DEFAULT_RECV_TIMEOUT_MS, type Frame, type RecvOptions } from './transport.js';

interface Waiter extends Deadline {
  resolve(frame: Frame): void;
  reject(error: SeqparError): void;
}

/** Bytes a frame occupies in a receive queue: its payload plus a flat allowance for header and bookkeeping. */
export function frameCost(payloadBytes: number): number {
  return payloadBytes + 64;
}

/**
 * The receiving side shared by every transport: per (peer, tag) FIFO queues of frames nobody waits for yet,
 * and the waiters of `recv`. `onConsumed(from, frame)` fires when a frame reaches a caller, so the transport
 * can return that much credit to the sender (backpressure lives in credit-window.ts).
 */
export class Mailbox {
  private readonly queues = new Map<string, Frame[]>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly peerErrors = new Map<number, SeqparError>();
  private readonly deadlines = new DeadlineTimer<Waiter>();
  private closedError: SeqparError | undefined;

  /**
   * `admit` (optional) checks an arriving frame before anyone can take it: it returns the frame to queue, or
   * undefined to discard it (it then reports the failure itself, e.g. by failing the peer).
   */
  constructor(
    private readonly onConsumed: (from: number, frame: Frame) => void,
    private readonly admit?: (from: number, frame: Frame) => Frame | undefined,
  ) {}

  deliver(from: number, arrived: Frame): void {
    if (this.closedError || this.peerErrors.has(from)) return;
    const frame = this.admit ? this.admit(from, arrived) : arrived;
    if (!frame) return;
    const key = keyOf(from, frame.tag);
    const waiter = this.waiters.get(key)?.shift();
    if (waiter) {
      this.onConsumed(from, frame);
      waiter.resolve(frame);
      return;
    }
    const queue = this.queues.get(key);
    if (queue) queue.push(frame);
    else this.queues.set(key, [frame]);
  }

  take(from: number, tag: string, options: RecvOptions = {}): Promise<Frame> {
    const key = keyOf(from, tag);
    const queued = this.queues.get(key);
    if (queued?.length) {
      const frame = queued.shift()!;
      if (!queued.length) this.queues.delete(key);
      this.onConsumed(from, frame);
      return Promise.resolve(frame);
    }
    const failure = this.closedError ?? this.peerErrors.get(from);
    if (failure) return Promise.reject(failure);
    if (options.signal?.aborted) return Promise.reject(abortError(from, tag));
    const timeoutMs = options.timeoutMs ?? DEFAULT_RECV_TIMEOUT_MS;
    return new Promise<Frame>((resolve, reject) => {
      const list = this.waiters.get(key) ?? [];
      this.waiters.set(key, list);
      const settle = () => {
        this.deadlines.delete(waiter);
        options.signal?.removeEventListener('abort', onAbort);
        const index = list.indexOf(waiter);
        if (index >= 0) list.splice(index, 1);
        // Decode uses a fresh tag per layer and token: an empty list left behind would be kept forever.
        if (!list.length && this.waiters.get(key) === list) this.waiters.delete(key);
      };
      const waiter: Waiter = {
        at: performance.now() + timeoutMs,
        resolve: (frame) => (settle(), resolve(frame)),
        reject: (error) => (settle(), reject(error)),
        expire: () => waiter.reject(new SeqparError('ERR_TIMEOUT', `no frame '${tag}' from rank ${from} within ${timeoutMs} ms`)),
      };
      const onAbort = () => waiter.reject(abortError(from, tag));
      this.deadlines.add(waiter);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      list.push(waiter);
    });
  }

  /** The peer is gone: its waiters fail now; frames it already delivered can still be taken. */
  failPeer(from: number, error: SeqparError): void {
    if (this.peerErrors.has(from)) return;
    this.peerErrors.set(from, error);
    for (const [key, list] of this.waiters) {
      if (key.startsWith(`${from}\u0000`)) for (const waiter of [...list]) waiter.reject(error);
    }
  }

  peerError(from: number): SeqparError | undefined {
    return this.peerErrors.get(from);
  }

  close(error: SeqparError): void {
    this.closedError ??= error;
    for (const list of this.waiters.values()) for (const waiter of [...list]) waiter.reject(error);
    this.queues.clear();
    this.deadlines.stop();
  }
}

function keyOf(from: number, tag: string): string {
  return `${from}\u0000${tag}`;
}

function abortError(from: number, tag: string): SeqparError {
  return new SeqparError('ERR_ABORTED', `receive of '${tag}' from rank ${from} aborted`);
}
