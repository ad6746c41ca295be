import { SeqparError, UsageError } from '@seqpar/core';
import { CreditWindow } from './credit-window.js';
import type { FaultInjector, FaultPlan, SendFaults } from './fault-plan.js';
import { checkHeaderKeys, FrameGuard } from './frame-guard.js';
import { LinkShaper, type LinkSpec } from './link-shaper.js';
import { frameCost, Mailbox } from './mailbox.js';
import { DEFAULT_MAX_PAYLOAD, type Frame, type FrameHeader, type RecvOptions, type SendOptions, type Transport, type TransportKind, type TransportStats } from './transport.js';

const EMPTY = new Uint8Array(0);
const HANDED_OFF = Promise.resolve();

/**
 * Options every transport takes besides its own (they reach the base through `resolveLimits`): end-to-end frame
 * checks and the simulated network. All off by default; the runtime sets them for simulated clusters.
 */
export interface LinkConditions {
  /** Stamp every frame with a CRC32 of its payload and a sequence number (frame-guard.ts). Default: on when `links` or `faults` is set. */
  readonly checksum?: boolean;
  /** Latency, bandwidth and jitter of this rank's outgoing links (link-shaper.ts). */
  readonly links?: LinkSpec;
  /** Faults this rank suffers (fault-plan.ts); share one injector across the transports a rank opens. */
  readonly faults?: FaultInjector;
}

/**
 * {@link LinkConditions} as configuration (JSON, so it travels to worker processes): the fault plan itself, from
 * which each rank's process builds its one injector.
 */
export interface SimulatedNetwork {
  readonly checksum?: boolean;
  readonly links?: LinkSpec;
  readonly faults?: FaultPlan;
}

export interface TransportLimits extends LinkConditions {
  maxPayload: number;
  maxQueuedBytes: number;
}

/**
 * What every transport shares: argument checks, counters, the receive mailbox, one credit window per peer, the
 * closed state, and the optional frame guard, faults and link shaping of a send:
 *
 *   send: checks ─► faults (kill, stall) ─► credit ─► stamp seq + CRC ─► faults (drop, corrupt, duplicate)
 *         ─► link port (bandwidth, latency, jitter, delay) ─► transmit        arrival: verify stamp ─► mailbox
 *
 * A transport supplies only how a frame reaches a peer and how credit travels back.
 */
export abstract class TransportBase implements Transport {
  protected readonly mailbox = new Mailbox(
    (from, frame) => this.consumed(from, frame),
    (from, frame) => this.admit(from, frame),
  );
  protected readonly credit: CreditWindow[];
  /** Set when a fault killed this rank: peers are told it was lost, not that it closed. */
  protected killed = false;
  private readonly counters: TransportStats = { bytesSent: 0, bytesRecv: 0, framesSent: 0, framesRecv: 0 };
  private readonly guard: FrameGuard;
  private readonly stamping: boolean;
  private readonly faults: FaultInjector | undefined;
  private readonly shaper: LinkShaper | undefined;
  /** No faults, stamps or link shaping: a send may take the fast path. */
  private readonly plain: boolean;
  private readonly closed = new AbortController();
  private closing: Promise<void> | undefined;

  protected constructor(
    readonly rank: number,
    readonly worldSize: number,
    readonly kind: TransportKind,
    protected readonly limits: TransportLimits,
  ) {
    if (!Number.isInteger(worldSize) || worldSize < 1) throw new UsageError(`worldSize must be a positive integer, got ${worldSize}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new UsageError(`rank ${rank} is outside 0..${worldSize - 1}`);
    this.credit = Array.from({ length: worldSize }, (_, peer) => new CreditWindow(limits.maxQueuedBytes, () => this.creditStarved(peer)));
    this.guard = new FrameGuard();
    const simulated = limits.links !== undefined || limits.faults !== undefined;
    this.stamping = limits.checksum ?? simulated;
    this.faults = limits.faults;
    this.shaper = simulated ? new LinkShaper(limits.links ?? {}, rank, this.closed.signal, (to, error) => this.onLinkError(to, error)) : undefined;
    this.plain = !this.faults && !this.shaper && !this.stamping;
  }

  /**
   * Not async: a frame that needs no fault, stamp or link port and fits the credit window is transmitted before
   * `send` returns, and a transport that handed it off synchronously (a small ws frame) gets back one shared
   * resolved promise, with no await or promise of its own on the way (a ping-pong sends one frame per turn).
   */
  send(to: number, tag: string, header: FrameHeader, payload?: ArrayBufferView, options: SendOptions = {}): Promise<void> {
    let bytes: Uint8Array;
    try {
      this.checkPeer(to, 'send to');
      checkHeaderKeys(header);
      bytes = asPlainBytes(payload);
      if (bytes.byteLength > this.limits.maxPayload) {
        throw new SeqparError('ERR_FRAME_TOO_LARGE', `payload of ${bytes.byteLength} bytes exceeds maxPayload ${this.limits.maxPayload}`);
      }
      this.throwIfUnusable(to);
      if (this.plain && this.credit[to]!.tryAcquire(frameCost(bytes.byteLength))) {
        const handingOff = this.transmit(to, tag, header, bytes);
        if (!handingOff) return this.sent(bytes);
        return handingOff.then(() => this.sent(bytes));
      }
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return this.sendWhenAllowed(to, tag, header, bytes, options);
  }

  /** The general send: waits for credit, then faults, stamp and link port as configured. */
  private async sendWhenAllowed(to: number, tag: string, header: FrameHeader, bytes: Uint8Array, options: SendOptions): Promise<void> {
    const faults = this.faults?.onSend(this.rank, to);
    if (faults?.kill) await this.die(to, tag);
    await this.credit[to]!.acquire(frameCost(bytes.byteLength), options.signal);
    this.throwIfUnusable(to);
    const stamped = this.stamping ? this.guard.stamp(to, header, bytes) : header;
    if (this.shaper) await this.sendShaped(to, tag, stamped, bytes, faults, options.signal);
    else await this.transmit(to, tag, stamped, bytes);
    await this.sent(bytes);
  }

  private sent(bytes: Uint8Array): Promise<void> {
    this.counters.framesSent += 1;
    this.counters.bytesSent += bytes.byteLength;
    return HANDED_OFF;
  }

  /** Not async: the mailbox's promise is the caller's, one promise and one hop per frame fewer on the way to it. */
  recv(from: number, tag: string, options?: RecvOptions): Promise<Frame> {
    try {
      this.checkPeer(from, 'receive from');
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return this.mailbox.take(from, tag, options);
  }

  stats(): TransportStats {
    return { ...this.counters };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed.abort();
      const error = new SeqparError('ERR_CLOSED', `transport of rank ${this.rank} is closed`);
      this.mailbox.close(error);
      for (const window of this.credit) window.fail(error);
      await this.shutdown();
    })();
    return this.closing;
  }

  protected get isClosed(): boolean {
    return this.closing !== undefined;
  }

  /** The peer is unreachable: its waiters and senders fail with `error`. */
  protected failPeer(peer: number, error: SeqparError): void {
    this.mailbox.failPeer(peer, error);
    this.credit[peer]?.fail(error);
  }

  /** Hand the frame to the peer; `payload` may be reused by the caller once this resolves (at once when it returns nothing). */
  protected abstract transmit(to: number, tag: string, header: FrameHeader, payload: Uint8Array): Promise<void> | void;
  /** The local caller took `cost` bytes of frames from `from`: tell that sender. */
  protected abstract returnCredit(from: number, cost: number): void;

  /** A send to `peer` waits for credit; a transport that holds credit back asks for it here. */
  protected creditStarved(_peer: number): void {}
  protected abstract shutdown(): Promise<void>;

  /**
   * The simulated path: the frame waits its turn on the link's port and is transmitted on arrival, so it is
   * copied first (the caller may reuse `bytes` once send resolves). Faults act on the stamped frame, so the
   * receiver's checks see exactly what a real fault would leave.
   */
  private async sendShaped(to: number, tag: string, header: FrameHeader, bytes: Uint8Array, faults: SendFaults | undefined, signal?: AbortSignal): Promise<void> {
    const wire = faults?.corrupt ? this.faults!.corrupt(bytes) : bytes.slice();
    const copies = faults?.drop ? 0 : faults?.duplicate ? 2 : 1;
    if (copies === 0) this.credit[to]!.release(frameCost(bytes.byteLength)); // nothing will arrive to pay it back
    const deliver = async () => {
      for (let i = 0; i < copies; i++) await this.transmit(to, tag, header, wire);
    };
    const leaving = this.shaper!.send(to, wire.byteLength, deliver, { delayMs: faults?.delayMs ?? 0, notBefore: faults?.holdUntil ?? 0 });
    // An aborted caller stops waiting (e.g. a stalled rank's request was dropped); the frame stays on the port.
    await (signal ? abortable(leaving, signal, `send of '${tag}' to rank ${to} aborted`) : leaving);
    if (this.isClosed) throw new SeqparError('ERR_CLOSED', `transport of rank ${this.rank} is closed`);
  }

  /** A frame reached a `recv` caller: count it and pay its credit back to the sender. */
  private consumed(from: number, frame: Frame): void {
    this.counters.framesRecv += 1;
    this.counters.bytesRecv += frame.payload.byteLength;
    this.returnCredit(from, frameCost(frame.payload.byteLength));
  }

  /** Arrival check of the frame guard; a frame that fails it fails its peer with the guard's error. */
  private admit(from: number, frame: Frame): Frame | undefined {
    try {
      return this.guard.admit(from, frame);
    } catch (error) {
      frame.release?.();
      this.failPeer(from, error as SeqparError);
      return undefined;
    }
  }

  /** A kill fault: the process goes (the injector's `onKill`), or else this rank's transport dies. */
  private async die(to: number, tag: string): Promise<never> {
    this.faults!.kill(this.rank);
    this.killed = true;
    await this.close();
    throw new SeqparError('ERR_CLOSED', `rank ${this.rank} was killed by its fault plan (sending '${tag}' to rank ${to})`);
  }

  /** A deferred transmit failed after its send had resolved: later sends to and receives from `to` fail. */
  private onLinkError(to: number, error: unknown): void {
    if (this.isClosed) return;
    this.failPeer(to, error instanceof SeqparError ? error : new SeqparError('ERR_PEER_LOST', `link to rank ${to} failed: ${String(error)}`));
  }

  private checkPeer(peer: number, what: string): void {
    if (!Number.isInteger(peer) || peer < 0 || peer >= this.worldSize || peer === this.rank) {
      throw new UsageError(`cannot ${what} rank ${peer}: peers of rank ${this.rank} are 0..${this.worldSize - 1} except itself`);
    }
  }

  private throwIfUnusable(peer: number): void {
    if (this.closing) throw new SeqparError('ERR_CLOSED', `transport of rank ${this.rank} is closed`);
    const error = this.mailbox.peerError(peer);
    if (error) throw error;
  }
}

/** A transport's options object may carry {@link LinkConditions} too: they pass through to the base here. */
export function resolveLimits(options: Partial<TransportLimits>, defaultQueued: number): TransportLimits {
  const { checksum, links, faults } = options;
  return {
    maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    maxQueuedBytes: options.maxQueuedBytes ?? defaultQueued,
    ...(checksum === undefined ? {} : { checksum }),
    ...(links === undefined ? {} : { links }),
    ...(faults === undefined ? {} : { faults }),
  };
}

/** The payload as a plain Uint8Array (not a Buffer, whose `slice` is a view): one made only when needed. */
function asPlainBytes(payload: ArrayBufferView | undefined): Uint8Array {
  if (!payload) return EMPTY;
  return payload.constructor === Uint8Array ? (payload as Uint8Array) : new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
}

function abortable(pending: Promise<void>, signal: AbortSignal, message: string): Promise<void> {
  if (signal.aborted) return Promise.reject(new SeqparError('ERR_ABORTED', message));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new SeqparError('ERR_ABORTED', message));
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
