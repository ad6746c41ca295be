import { SeqparError } from '@seqpar/core';
import type { RawData, WebSocket } from 'ws';
import { listenForPeers, type PeerListener } from './peer-listener.js';
import { joinRendezvous, type RendezvousDialOptions } from './rendezvous.js';
import { PayloadAssembly, payloadParts } from './payload-parts.js';
import { receivedFrame } from './received-frame.js';
import { resolveLimits, TransportBase } from './transport-base.js';
import { DEFAULT_MAX_QUEUED_BYTES, type FrameHeader, type Transport, type TransportKind, type TransportStats } from './transport.js';
import { decodeMessage, encodeControl, encodeCredit, encodeData, encodeDataHead, WireKind } from './wire-frame.js';
import { connectWithRetry } from './ws-connect.js';
import { acceptHandshake, dialHandshake, type Token } from './ws-handshake.js';

export interface WsTransportOptions extends RendezvousDialOptions {
  rank: number;
  worldSize: number;
  /** Shared secret; proven by HMAC challenge, never sent. */
  token: Token;
  /** host:port of the rendezvous server (rendezvous.ts). */
  rendezvous: string;
  /** Interface this rank listens on for its peers. Default 127.0.0.1. */
  listenHost?: string;
  maxPayload?: number;
  maxQueuedBytes?: number;
  /** Ping every this many ms; a peer silent for two intervals is lost. Default 2000. */
  heartbeatMs?: number;
  /**
   * Peers whose silence is never taken for loss, only their closed connection is: a process running its user's
   * code (the library's coordinator, a client) may block its event loop for seconds and answer no ping meanwhile.
   */
  patientPeers?: readonly number[];
  /** Bound on rendezvous plus connecting to every peer. Default 30 s. */
  connectTimeoutMs?: number;
}

/** Connect rank `options.rank` to all its peers over authenticated WebSockets (one per pair; higher rank dials). */
export async function createWsTransport(options: WsTransportOptions): Promise<Transport> {
  const transport = new WsTransport(options, 'ws');
  await transport.connect();
  return transport;
}

const META_ALLOWANCE = 64 * 1024;
/**
 * Payloads from this size on go out as a DATA_HEAD message plus the caller's bytes untouched (wire-frame.ts);
 * smaller ones are copied into a single message, which costs less than a second socket write and lets `send`
 * resolve without waiting for the socket.
 */
const SEPARATE_PAYLOAD_FROM = 64 * 1024;

export class WsTransport extends TransportBase {
  private readonly links: (WebSocket | undefined)[];
  private readonly linkErrors = new Map<number, SeqparError>();
  private readonly pendingCredit: number[];
  /** Per peer: it said it waits for credit (a CREDIT message of 0 bytes), so the next credit leaves at once. */
  private readonly creditWanted: boolean[];
  private readonly silentBeats: number[];
  /** Per peer: bytes handed to its socket, and how many of them had left it at the last beat. */
  private readonly handedBytes: number[];
  private readonly flushedAtBeat: number[];
  /** Per peer: the DATA_HEAD whose payload is the next message on that link. */
  private readonly payloadHeads: (PayloadAssembly | undefined)[];
  private heartbeat: NodeJS.Timeout | undefined;
  private lastBeat = 0;
  private listener: PeerListener | undefined;
  private linked: (() => void) | undefined;
  private socketMessages = 0;

  constructor(
    private readonly options: WsTransportOptions,
    kind: TransportKind,
  ) {
    super(options.rank, options.worldSize, kind, resolveLimits(options, DEFAULT_MAX_QUEUED_BYTES));
    this.links = new Array(options.worldSize).fill(undefined);
    this.pendingCredit = new Array(options.worldSize).fill(0);
    this.creditWanted = new Array(options.worldSize).fill(false);
    this.silentBeats = new Array(options.worldSize).fill(0);
    this.handedBytes = new Array(options.worldSize).fill(0);
    this.flushedAtBeat = new Array(options.worldSize).fill(0);
    this.payloadHeads = new Array(options.worldSize).fill(undefined);
  }

  async connect(): Promise<void> {
    const { rank, worldSize, token } = this.options;
    const deadline = Date.now() + (this.options.connectTimeoutMs ?? 30_000);
    const host = this.options.listenHost ?? '127.0.0.1';
    // Higher ranks dial, so this port serves worldSize - rank - 1 peers.
    const listener = await listenForPeers({ host, maxPeers: worldSize - rank - 1, name: `rank ${rank}` }, async (ws) => {
      const { peer, early } = await acceptHandshake(ws, token, rank, (peer) => peer > rank && peer < worldSize && !this.links[peer] && !this.isClosed, this.wireLimit);
      this.attach(peer, ws, early);
    });
    this.listener = listener;
    const all = new Promise<void>((resolve) => (this.linked = resolve));
    try {
      const addresses = await joinRendezvous({ ...this.options, address: listener.address, timeoutMs: deadline - Date.now() });
      await Promise.all(addresses.slice(0, rank).map((peerAddress, peer) => this.dial(peer, peerAddress, deadline)));
      this.checkLinked();
      await Promise.race([all, sleepUntil(deadline)]);
      const missing = this.links.flatMap((link, peer) => (!link && peer !== rank ? [peer] : []));
      if (missing.length) throw new SeqparError('ERR_TIMEOUT', `rank ${rank}: ranks ${missing.join(', ')} did not connect in time`);
    } catch (error) {
      await this.close();
      throw error;
    }
    const beatMs = this.options.heartbeatMs ?? 2000;
    this.lastBeat = performance.now();
    this.heartbeat = setInterval(() => this.beat(beatMs), beatMs).unref();
  }

  /** Largest ws message an authenticated link carries: a payload plus its frame's metadata. */
  private get wireLimit(): number {
    return this.limits.maxPayload + META_ALLOWANCE;
  }

  protected sendControl(to: number, control: Record<string, unknown>): void {
    this.write(to, encodeControl(control));
  }

  override stats(): TransportStats {
    return { ...super.stats(), socketMessages: this.socketMessages };
  }

  /** Every message leaves here, so `socketMessages` and the bytes handed to a link count them; `written` hears when ws wrote it. */
  private write(to: number, message: Uint8Array, written?: (error?: Error) => void): void {
    const link = this.links[to];
    if (!link) return written?.(new Error('the link is gone'));
    this.socketMessages += 1;
    this.handedBytes[to]! += message.byteLength;
    if (written) link.send(message, written);
    else link.send(message);
  }

  /** A decoded DATA frame from `from`; shm overrides it to map slot references (`ref`). */
  protected onData(from: number, tag: string, header: FrameHeader, payload: Uint8Array, ref: unknown[] | undefined): void {
    if (ref) throw new SeqparError('ERR_BAD_FRAME', 'unexpected frame reference');
    this.mailbox.deliver(from, receivedFrame(tag, header, payload));
  }

  /** The link to `peer` is authenticated and open; shm announces its ring here. */
  protected onLinked(_peer: number): void {}

  protected onControl(from: number, _control: Record<string, unknown>): void {
    this.dropLink(from, new SeqparError('ERR_BAD_FRAME', `rank ${from} sent an unexpected control message`));
  }

  protected transmit(to: number, tag: string, header: FrameHeader, payload: Uint8Array, ref?: unknown[]): Promise<void> | void {
    const link = this.links[to];
    if (!link || link.readyState !== link.OPEN) throw this.linkErrors.get(to) ?? new SeqparError('ERR_PEER_LOST', `no open link to rank ${to}`);
    if (payload.byteLength < SEPARATE_PAYLOAD_FROM) {
      // The message owns a copy of the payload, so the caller's buffer is free at once; the credit window
      // bounds how much the socket may buffer.
      this.write(to, encodeData(tag, header, payload, ref, this.takePendingCredit(to)));
      return;
    }
    this.write(to, encodeDataHead(tag, header, payload.byteLength));
    // ws writes these very bytes (zero masks, no deflate): the caller may reuse them once the socket took them all.
    const parts = payloadParts(payload).map(
      (part) => new Promise<void>((resolve, reject) => this.write(to, part, (error) => (error ? reject(this.sendFailure(to, error)) : resolve()))),
    );
    return Promise.all(parts).then(() => undefined);
  }

  private sendFailure(to: number, error: Error): SeqparError {
    if (this.isClosed) return new SeqparError('ERR_CLOSED', `transport of rank ${this.rank} closed while sending to rank ${to}`);
    return this.linkErrors.get(to) ?? new SeqparError('ERR_PEER_LOST', `lost rank ${to} while sending: ${error.message}`);
  }

  /**
   * Credit goes back in batches, not per frame: a credit message per small frame doubled the socket writes of a
   * round trip. It rides on the next small frame to that peer (so a ping-pong or an exchange returns it for free);
   * otherwise a batch leaves as a message of its own once it reaches an eighth of the window, or at once when the
   * sender said it waits for credit (`creditStarved`). No timer: a linger timer of 2 ms, re-armed while frames
   * flowed, kept every epoll wait of both processes within 2 ms of a timer, which cost a raw ws ping-pong with
   * such a timer on each side 27 -> 36 µs median and seqpar's ws round trip 36 -> 52 µs on this VM.
   */
  protected returnCredit(from: number, cost: number): void {
    this.pendingCredit[from]! += cost;
    if (this.creditWanted[from] || this.pendingCredit[from]! >= this.limits.maxQueuedBytes / 8) this.flushCredit(from);
  }

  /** A send to `peer` waits for credit: ask for what `peer` holds back (a CREDIT message of 0 bytes). */
  protected override creditStarved(peer: number): void {
    this.write(peer, encodeCredit(0));
  }

  /** Credit owed to `peer`, now handed to a frame going there. */
  private takePendingCredit(peer: number): number {
    const bytes = this.pendingCredit[peer]!;
    this.pendingCredit[peer] = 0;
    if (bytes > 0) this.creditWanted[peer] = false;
    return bytes;
  }

  private flushCredit(peer: number): void {
    const bytes = this.takePendingCredit(peer);
    if (bytes > 0) this.write(peer, encodeCredit(bytes));
  }

  /** A CREDIT message: credit returned to this rank, or (0 bytes) the peer asking for the credit owed to it. */
  private onCredit(peer: number, bytes: number): void {
    if (bytes > 0) return this.credit[peer]!.release(bytes);
    this.creditWanted[peer] = true;
    this.flushCredit(peer);
  }

  protected async shutdown(): Promise<void> {
    clearInterval(this.heartbeat);
    const closing = this.links.map((link) =>
      link && link.readyState !== link.CLOSED
        ? new Promise<void>((resolve) => {
            const timer = setTimeout(() => (link.terminate(), resolve()), 1000);
            link.once('close', () => (clearTimeout(timer), resolve()));
            link.close(1000);
          })
        : undefined,
    );
    await Promise.all(closing);
    await this.listener?.close();
  }

  private async dial(peer: number, address: string, deadline: number): Promise<void> {
    const ws = await connectWithRetry(address, deadline);
    ws.on('error', () => {});
    try {
      const { peer: acceptor, early } = await dialHandshake(ws, this.options.token, this.rank, this.wireLimit);
      if (acceptor !== peer) throw new SeqparError('ERR_AUTH', `expected rank ${peer} at ${address}, found rank ${acceptor}`);
      this.attach(peer, ws, early);
    } catch (error) {
      ws.terminate();
      throw error;
    }
  }

  private attach(peer: number, ws: WebSocket, early: RawData[]): void {
    if (this.isClosed) return void ws.terminate();
    this.links[peer] = ws;
    ws.on('message', (data, isBinary) => this.onMessage(peer, data, isBinary));
    ws.on('pong', () => (this.silentBeats[peer] = 0));
    ws.on('error', (error: Error & { code?: string }) => {
      const tooLarge = error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
      this.linkErrors.set(peer, new SeqparError(tooLarge ? 'ERR_FRAME_TOO_LARGE' : 'ERR_BAD_FRAME', `rank ${peer}: ${error.message}`));
    });
    ws.on('close', (code) => {
      const error =
        this.linkErrors.get(peer) ??
        (code === 1000
          ? new SeqparError('ERR_CLOSED', `rank ${peer} closed its transport`)
          : new SeqparError('ERR_PEER_LOST', `lost rank ${peer}: connection closed (code ${code})`));
      this.linkErrors.set(peer, error);
      this.failPeer(peer, error);
    });
    this.onLinked(peer);
    for (const data of early) this.onMessage(peer, data, true);
    this.checkLinked();
  }

  private onMessage(peer: number, data: RawData, isBinary: boolean): void {
    this.silentBeats[peer] = 0;
    this.socketMessages += 1;
    if (this.linkErrors.has(peer)) return;
    try {
      if (!isBinary || !Buffer.isBuffer(data)) throw new SeqparError('ERR_BAD_FRAME', 'expected binary messages');
      const head = this.payloadHeads[peer];
      if (head) {
        const payload = head.add(data);
        if (!payload) return;
        this.payloadHeads[peer] = undefined;
        return this.onData(peer, head.tag, head.header, payload, undefined);
      }
      const message = decodeMessage(data);
      if (message.kind === WireKind.Data) {
        if (message.credit) this.credit[peer]!.release(message.credit);
        this.onData(peer, message.tag, message.header, message.payload, message.ref);
      } else if (message.kind === WireKind.DataHead) this.expectPayload(peer, message);
      else if (message.kind === WireKind.Credit) this.onCredit(peer, message.bytes);
      else this.onControl(peer, message.control);
    } catch (error) {
      const reason = error instanceof SeqparError ? error : new SeqparError('ERR_BAD_FRAME', String(error));
      this.dropLink(peer, new SeqparError(reason.code, `rank ${peer} sent a bad frame: ${reason.message}`));
    }
  }

  private expectPayload(peer: number, { tag, header, byteLength }: { tag: string; header: FrameHeader; byteLength: number }): void {
    if (byteLength > this.limits.maxPayload) {
      throw new SeqparError('ERR_FRAME_TOO_LARGE', `announced payload of ${byteLength} bytes exceeds maxPayload ${this.limits.maxPayload}`);
    }
    this.payloadHeads[peer] = new PayloadAssembly(tag, header, byteLength);
  }

  /** Close one peer's connection because of what it sent; the other links and the listener carry on. */
  protected dropLink(peer: number, error: SeqparError): void {
    this.linkErrors.set(peer, error);
    this.failPeer(peer, error);
    this.links[peer]?.terminate();
  }

  private beat(beatMs: number): void {
    // A beat that comes late means this process's own event loop was blocked: the pongs it missed meanwhile wait
    // unread in its sockets, so the silence is its own, and every count starts over.
    const now = performance.now();
    const stalled = now - this.lastBeat > 1.5 * beatMs;
    this.lastBeat = now;
    this.links.forEach((link, peer) => {
      if (!link || this.linkErrors.has(peer)) return;
      // A peer that takes in what we send is alive: its pong only queues behind our data (a ping sent after a
      // 64 MiB KV block reaches it once it has read the block, which took over a second on a loaded host).
      const flushed = this.handedBytes[peer]! - link.bufferedAmount;
      const reading = flushed > this.flushedAtBeat[peer]!;
      this.flushedAtBeat[peer] = flushed;
      if (stalled || reading) this.silentBeats[peer] = 0;
      else if (this.silentBeats[peer]! >= 2 && !this.options.patientPeers?.includes(peer)) {
        this.dropLink(peer, new SeqparError('ERR_PEER_LOST', `lost rank ${peer}: no heartbeat for ${2 * beatMs} ms`));
        return;
      }
      this.silentBeats[peer]! += 1;
      link.ping();
    });
  }

  private checkLinked(): void {
    if (this.links.every((link, peer) => link || peer === this.rank)) this.linked?.();
  }
}

function sleepUntil(deadline: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref());
}
