import { SeqparError, UsageError } from '@seqpar/core';
import { CreditWindow } from './credit-window.js';
import { frameCost, Mailbox } from './mailbox.js';
import {
  DEFAULT_MAX_PAYLOAD,
  type Frame,
  type FrameHeader,
  type RecvOptions,
  type SendOptions,
  type Transport,
  type TransportKind,
  type TransportStats,
} from './transport.js';

export interface TransportLimits {
  maxPayload: number;
  maxQueuedBytes: number;
}

/**
 * What every transport shares: argument checks, counters, the receive mailbox, one credit window per peer and
 * the closed state. A transport supplies only how a frame reaches a peer and how credit travels back.
 */
export abstract class TransportBase implements Transport {
  protected readonly mailbox = new Mailbox((from, cost) => this.returnCredit(from, cost));
  protected readonly credit: CreditWindow[];
  private readonly counters: TransportStats = { bytesSent: 0, bytesRecv: 0, framesSent: 0, framesRecv: 0 };
  private closing: Promise<void> | undefined;

  protected constructor(
    readonly rank: number,
    readonly worldSize: number,
    readonly kind: TransportKind,
    protected readonly limits: TransportLimits,
  ) {
    if (!Number.isInteger(worldSize) || worldSize < 1) throw new UsageError(`worldSize must be a positive integer, got ${worldSize}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new UsageError(`rank ${rank} is outside 0..${worldSize - 1}`);
    this.credit = Array.from({ length: worldSize }, () => new CreditWindow(limits.maxQueuedBytes));
  }

  async send(to: number, tag: string, header: FrameHeader, payload?: ArrayBufferView, options: SendOptions = {}): Promise<void> {
    this.checkPeer(to, 'send to');
    const bytes = payload ? new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength) : new Uint8Array(0);
    if (bytes.byteLength > this.limits.maxPayload) {
      throw new SeqparError('ERR_FRAME_TOO_LARGE', `payload of ${bytes.byteLength} bytes exceeds maxPayload ${this.limits.maxPayload}`);
    }
    this.throwIfUnusable(to);
    await this.credit[to]!.acquire(frameCost(bytes.byteLength), options.signal);
    this.throwIfUnusable(to);
    await this.transmit(to, tag, header, bytes);
    this.counters.framesSent += 1;
    this.counters.bytesSent += bytes.byteLength;
  }

  async recv(from: number, tag: string, options?: RecvOptions): Promise<Frame> {
    this.checkPeer(from, 'receive from');
    const frame = await this.mailbox.take(from, tag, options);
    this.counters.framesRecv += 1;
    this.counters.bytesRecv += frame.payload.byteLength;
    return frame;
  }

  stats(): TransportStats {
    return { ...this.counters };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
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

  /** Hand the frame to the peer; `payload` may be reused by the caller once this resolves. */
  protected abstract transmit(to: number, tag: string, header: FrameHeader, payload: Uint8Array): Promise<void>;
  /** The local caller took `cost` bytes of frames from `from`: tell that sender. */
  protected abstract returnCredit(from: number, cost: number): void;
  protected abstract shutdown(): Promise<void>;

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

export function resolveLimits(options: Partial<TransportLimits>, defaultQueued: number): TransportLimits {
  return { maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD, maxQueuedBytes: options.maxQueuedBytes ?? defaultQueued };
}
