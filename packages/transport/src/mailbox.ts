import { SeqparError } from '@seqpar/core';
import { DeadlineTimer } from './deadline-timer.js';
import { DEFAULT_RECV_TIMEOUT_MS, type Frame, type RecvOptions } from './transport.js';

/**
 * One pending `recv`: a class rather than a set of closures per call, since a ping-pong makes one per frame. It
 * settles once: it leaves its list, its deadline and its signal, then resolves or rejects the caller's promise.
 */
class Waiter {
  readonly at: number;
  resolve!: (frame: Frame) => void;
  reject!: (error: SeqparError) => void;
  readonly promise: Promise<Frame>;

  constructor(
    private readonly mailbox: Mailbox,
    readonly from: number,
    readonly tag: string,
    private readonly list: Waiter[],
    readonly timeoutMs: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.at = performance.now() + timeoutMs;
    this.promise = new Promise<Frame>((resolve, reject) => ((this.resolve = resolve), (this.reject = reject)));
    signal?.addEventListener('abort', this, { once: true });
  }

  take(frame: Frame): void {
    this.settle();
    this.resolve(frame);
  }

  fail(error: SeqparError): void {
    this.settle();
    this.reject(error);
  }

  expire(): void {
    this.fail(new SeqparError('ERR_TIMEOUT', `no frame '${this.tag}' from rank ${this.from} within ${this.timeoutMs} ms`));
  }

  /** The signal's abort event (the waiter is its own listener, so no closure is made per receive). */
  handleEvent(): void {
    this.fail(abortError(this.from, this.tag));
  }

  private settle(): void {
    this.mailbox.forget(this, this.list);
    this.signal?.removeEventListener('abort', this);
  }
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
  /** Per peer, per tag: frames nobody waits for yet, and `recv` waiters (maps per peer: no key string per frame). */
  private readonly queues = new Map<number, Map<string, Frame[]>>();
  private readonly waiters = new Map<number, Map<string, Waiter[]>>();
  private readonly peerErrors = new Map<number, SeqparError>();
  private readonly deadlines = new DeadlineTimer((now) => this.expireDue(now));
  /** Tags a peer's waiter map may hold before its empty lists are dropped (grows with the tags in use). */
  private listLimit = MIN_LIST_LIMIT;
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
    // A waiting receive takes the frame at once: it never enters a queue.
    const waiter = this.waiters.get(from)?.get(frame.tag)?.[0];
    if (waiter) {
      this.onConsumed(from, frame);
      waiter.take(frame);
      return;
    }
    const queues = perPeer(this.queues, from);
    const queue = queues.get(frame.tag);
    if (queue) queue.push(frame);
    else queues.set(frame.tag, [frame]);
  }

  take(from: number, tag: string, options: RecvOptions = {}): Promise<Frame> {
    const queues = this.queues.get(from);
    const queued = queues?.get(tag);
    if (queued?.length) {
      const frame = queued.shift()!;
      if (!queued.length) queues!.delete(tag);
      this.onConsumed(from, frame);
      return Promise.resolve(frame);
    }
    const failure = this.closedError ?? this.peerErrors.get(from);
    if (failure) return Promise.reject(failure);
    if (options.signal?.aborted) return Promise.reject(abortError(from, tag));
    const waiters = perPeer(this.waiters, from);
    let list = waiters.get(tag);
    if (!list) waiters.set(tag, (list = this.newList(waiters)));
    const waiter = new Waiter(this, from, tag, list, options.timeoutMs ?? DEFAULT_RECV_TIMEOUT_MS, options.signal);
    this.deadlines.add(waiter.at);
    list.push(waiter);
    return waiter.promise;
  }

  /**
   * A settled waiter leaves its deadline and its list. An emptied list stays for its tag's next receive (a
   * ping-pong would otherwise delete and re-create a map entry per frame); `newList` drops the empty ones.
   */
  forget(waiter: Waiter, list: Waiter[]): void {
    this.deadlines.settled();
    if (list[0] === waiter) return void list.shift();
    const index = list.indexOf(waiter);
    if (index >= 0) list.splice(index, 1);
  }

  /**
   * Decode uses a fresh tag per layer and token, so empty lists left behind would be kept forever: once a peer's
   * map reaches the limit they are dropped, and the limit follows twice the tags still waited on.
   */
  private newList(waiters: Map<string, Waiter[]>): Waiter[] {
    if (waiters.size >= this.listLimit) {
      for (const [tag, list] of waiters) if (!list.length) waiters.delete(tag);
      this.listLimit = Math.max(MIN_LIST_LIMIT, 2 * waiters.size);
    }
    return [];
  }

  /** The deadline timer fired: waiters whose time is up fail; returns the earliest deadline left. */
  private expireDue(now: number): number {
    const due: Waiter[] = [];
    let next = Infinity;
    for (const waiters of this.waiters.values()) {
      for (const list of waiters.values()) {
        for (const waiter of list) {
          if (waiter.at <= now) due.push(waiter);
          else next = Math.min(next, waiter.at);
        }
      }
    }
    for (const waiter of due) waiter.expire();
    return next;
  }

  /** The peer is gone: its waiters fail now; frames it already delivered can still be taken. */
  failPeer(from: number, error: SeqparError): void {
    if (this.peerErrors.has(from)) return;
    this.peerErrors.set(from, error);
    for (const list of this.waiters.get(from)?.values() ?? []) for (const waiter of [...list]) waiter.fail(error);
  }

  peerError(from: number): SeqparError | undefined {
    return this.peerErrors.get(from);
  }

  close(error: SeqparError): void {
    this.closedError ??= error;
    for (const waiters of this.waiters.values()) for (const list of [...waiters.values()]) for (const waiter of [...list]) waiter.fail(error);
    this.queues.clear();
    this.deadlines.stop();
  }
}

const MIN_LIST_LIMIT = 64;

function perPeer<T>(maps: Map<number, Map<string, T>>, peer: number): Map<string, T> {
  let map = maps.get(peer);
  if (!map) maps.set(peer, (map = new Map()));
  return map;
}

function abortError(from: number, tag: string): SeqparError {
  return new SeqparError('ERR_ABORTED', `receive of '${tag}' from rank ${from} aborted`);
}
