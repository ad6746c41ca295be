import { SeqparError } from '@seqpar/core';
import { DecodeLanes, type DecodeLane } from './decode-lane.js';
import { receivedFrame } from './received-frame.js';
import { Poller } from './shm-poller.js';
import { checkRingShape, MAX_SLOTS, ReceiveRing, SendRing, type RingShape } from './shm-ring.js';
import { loadShm } from './shm-segment.js';
import type { Frame, FrameHeader, RecvOptions, SendOptions, Transport } from './transport.js';
import { decodeMessage, encodeData, WireKind } from './wire-frame.js';
import { WsTransport, type WsTransportOptions } from './ws-transport.js';

/** Bytes per shm slot unless told otherwise: payloads up to this size travel through shared memory. */
export const SHM_DEFAULT_SLOT_BYTES = 16 * 2 ** 20;

export interface ShmTransportOptions extends WsTransportOptions {
  /** Slots per directed ring. Default 4. */
  slots?: number;
  /** Bytes per slot; larger payloads travel over the socket instead. Default 16 MiB. */
  slotBytes?: number;
  /** Bytes of the record ring per directed link (small frames and doorbells); a power of two. Default 1 MiB. */
  ringBytes?: number;
  /** Payloads smaller than this are copied into the record ring instead of a slot. Default 16 KiB. */
  inlineBelow?: number;
  /** How long a send waits for a released slot before it goes over the socket. Default 200 ms. */
  slotWaitMs?: number;
  /** How long a waiting endpoint polls shared memory before it sleeps until a socket wake (shm-poller.ts). Default 1000 µs. */
  spinUs?: number;
}

/**
 * Same-host transport: frames move through one shared-memory segment per directed link (shm-ring.ts): small
 * payloads inside records, bigger ones in slots the receiver views without a copy (ORT-compatible) until it
 * releases the frame. Credit and slot releases are counters in the segment. The authenticated WebSocket link of
 * the ws transport sets the segments up, carries heartbeats, frames too big for a slot, and a wake for an endpoint
 * that stopped polling (shm-poller.ts); so frames exchanged back to back never touch the socket.
 */
export async function createShmTransport(options: ShmTransportOptions): Promise<Transport> {
  loadShm();
  const transport = new ShmTransport(options);
  await transport.connect();
  return transport;
}

const EMPTY = new Uint8Array(0);
const WAKE = { wake: 1 };

interface SpaceWaiter {
  message: Uint8Array;
  then: (() => Promise<void> | void) | undefined;
  resolve(sent: Promise<void> | void): void;
  reject(error: SeqparError): void;
}

class ShmTransport extends WsTransport {
  private readonly sendRings = new Map<number, SendRing>();
  private readonly receiveRings = new Map<number, ReceiveRing>();
  /** Per peer whose receiver has not yet mapped our ring: resolves when it has (and the name is gone). */
  private readonly awaitingMap = new Map<number, () => void>();
  private readonly mapped: Promise<void>[] = [];
  /** Per (peer, tag): settles once the latest send on it has appended its record. */
  private readonly handoffs = new Map<string, Promise<void>>();
  /** Per peer: records waiting for ring space, in send order. */
  private readonly spaceWaiters: SpaceWaiter[][];
  /** Per peer: sends waiting for a slot to come free; each resolves true (look again) or false (gave up). */
  private readonly slotWaiters: ((free: boolean) => void)[][];
  /** Per peer: set when a slot wait timed out (the receiver keeps its slots); cleared once a slot is free again. */
  private readonly starved: boolean[];
  /** Per peer: socket frames that arrived before the ring reached their marker, and markers read whose frame has not. */
  private readonly early: Frame[][];
  private readonly owed: number[];
  /** Per peer: recv calls outstanding. */
  private readonly receiving: number[];
  /** Peers failed: their rings are not read any more. */
  private readonly lost = new Set<number>();
  private readonly draining = new Set<number>();
  private readonly shape: RingShape;
  private readonly inlineBelow: number;
  private readonly slotWaitMs: number;
  private readonly poller: Poller;
  private readonly lanes: DecodeLanes;

  constructor(private readonly shmOptions: ShmTransportOptions) {
    super(shmOptions, 'shm');
    this.shape = { ringBytes: shmOptions.ringBytes ?? 2 ** 20, slots: shmOptions.slots ?? 4, slotBytes: shmOptions.slotBytes ?? SHM_DEFAULT_SLOT_BYTES };
    checkRingShape(this.shape);
    this.inlineBelow = shmOptions.inlineBelow ?? 16 * 1024;
    this.slotWaitMs = shmOptions.slotWaitMs ?? 200;
    const perPeer = <T>(make: () => T) => Array.from({ length: shmOptions.worldSize }, make);
    this.spaceWaiters = perPeer(() => []);
    this.slotWaiters = perPeer(() => []);
    this.starved = perPeer(() => false);
    this.early = perPeer(() => []);
    this.owed = perPeer(() => 0);
    this.receiving = perPeer(() => 0);
    this.lanes = new DecodeLanes(shmOptions.rank);
    this.poller = new Poller({ pump: () => this.pump(), wanted: () => this.wanted(), setAsleep: (asleep) => this.setAsleep(asleep) }, shmOptions.spinUs ?? 1000);
  }

  /** Ready once every peer has mapped the ring we send it through: from then on no segment name of ours exists. */
  override async connect(): Promise<void> {
    const deadline = Date.now() + (this.shmOptions.connectTimeoutMs ?? 30_000);
    await super.connect();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SeqparError('ERR_TIMEOUT', `rank ${this.rank}: peers did not map their shared memory in time`)), Math.max(1, deadline - Date.now()));
    });
    try {
      await Promise.race([Promise.all(this.mapped), late]);
    } catch (error) {
      await this.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  override send(to: number, tag: string, header: FrameHeader, payload?: ArrayBufferView, options?: SendOptions): Promise<void> {
    this.takeCredit(to);
    const sending = super.send(to, tag, header, payload, options);
    if (this.credit[to]?.blocked) this.poller.kick();
    return sending;
  }

  override recv(from: number, tag: string, options?: RecvOptions): Promise<Frame> {
    if (this.receiveRings.has(from)) this.drain(from);
    const receiving = super.recv(from, tag, options);
    if (this.receiving[from] === undefined) return receiving;
    this.receiving[from] += 1;
    this.poller.kick();
    return receiving.finally(() => (this.receiving[from]! -= 1));
  }

  protected override onLinked(peer: number): void {
    const ring = new SendRing(this.rank, peer, this.shape);
    this.sendRings.set(peer, ring);
    this.mapped.push(new Promise<void>((resolve) => this.awaitingMap.set(peer, resolve)));
    this.sendControl(peer, { ring: ring.name, ...this.lanes.create(peer), ...this.shape });
  }

  decodeLane(peer: number): DecodeLane | undefined {
    return this.lanes.get(peer);
  }

  protected override async transmit(to: number, tag: string, header: FrameHeader, payload: Uint8Array): Promise<void> {
    const ring = this.sendRings.get(to);
    if (!ring) return super.transmit(to, tag, header, payload);
    // The slot wait can outlast a later send on the same tag that needs no slot: each send appends its record
    // only after the previous send of its (peer, tag) did, which keeps the FIFO promise.
    const key = `${to}\u0000${tag}`;
    const previous = this.handoffs.get(key);
    let handedOff!: () => void;
    const mine = new Promise<void>((resolve) => (handedOff = resolve));
    this.handoffs.set(key, mine);
    try {
      const slot = await this.placeInSlot(to, ring, payload);
      await previous;
      if (slot !== undefined) return await this.append(to, encodeData(tag, header, EMPTY, [slot, payload.byteLength]));
      const inline = payload.byteLength < this.inlineBelow ? encodeData(tag, header, payload) : undefined;
      if (inline && inline.byteLength <= ring.maxRecord) return await this.append(to, inline);
      // The marker and the socket frame leave in one synchronous step, so markers and socket frames keep one order.
      await this.append(to, encodeData(tag, header, EMPTY, []), () => super.transmit(to, tag, header, payload));
    } finally {
      handedOff();
      if (this.handoffs.get(key) === mine) this.handoffs.delete(key);
    }
  }

  /** Copies the payload into a free slot and returns the slot, or undefined when it goes inline or by socket. */
  private async placeInSlot(to: number, ring: SendRing, payload: Uint8Array): Promise<number | undefined> {
    if (payload.byteLength < this.inlineBelow || payload.byteLength > this.shape.slotBytes) return undefined;
    let slot = ring.fillSlot(payload);
    if (slot === undefined && !this.starved[to]) {
      this.starved[to] = !(await this.slotFree(to));
      slot = ring.fillSlot(payload);
    }
    if (slot !== undefined) this.starved[to] = false;
    return slot;
  }

  private slotFree(to: number): Promise<boolean> {
    return new Promise((resolve) => {
      const waiters = this.slotWaiters[to]!;
      const done = (free: boolean) => {
        clearTimeout(timer);
        const index = waiters.indexOf(done);
        if (index >= 0) waiters.splice(index, 1);
        resolve(free);
      };
      const timer = setTimeout(() => done(false), this.slotWaitMs);
      waiters.push(done);
      this.poller.kick();
    });
  }

  /**
   * Appends a record to the ring to `to` (behind earlier records waiting for space), runs `then` in the same
   * synchronous step, and wakes the receiver if it sleeps.
   */
  private append(to: number, message: Uint8Array, then?: () => Promise<void> | void): Promise<void> | void {
    const ring = this.sendRings.get(to)!;
    const waiters = this.spaceWaiters[to]!;
    if (!waiters.length && ring.tryAppend(message)) {
      const sent = then?.();
      if (ring.receiverAsleep) this.sendControl(to, WAKE);
      return sent;
    }
    return new Promise<void>((resolve, reject) => {
      waiters.push({ message, then, resolve: (sent) => resolve(sent), reject });
      this.sendControl(to, WAKE); // an idle receiver reads its rings only when asked
      this.poller.kick();
    });
  }

  /** One poll: reads every ring, collects returned credit, and lets waiting sends retry. True when anything moved. */
  private pump(): boolean {
    let moved = false;
    for (const peer of this.receiveRings.keys()) moved = this.drain(peer) || moved;
    for (const [peer, ring] of this.sendRings) {
      moved = this.takeCredit(peer) || moved;
      const waiters = this.spaceWaiters[peer]!;
      let appended = false;
      while (waiters.length && ring.tryAppend(waiters[0]!.message)) {
        const waiter = waiters.shift()!;
        waiter.resolve(waiter.then?.());
        appended = true;
      }
      if (appended && ring.receiverAsleep) this.sendControl(peer, WAKE);
      moved ||= appended;
      if (this.slotWaiters[peer]!.length && ring.hasFreeSlot()) {
        this.slotWaiters[peer]![0]!(true);
        moved = true;
      }
    }
    return moved;
  }

  private wanted(): boolean {
    if (this.isClosed) return false;
    for (let peer = 0; peer < this.worldSize; peer += 1) {
      if (this.receiving[peer]! > 0 || this.sendWaits(peer)) return true;
    }
    return false;
  }

  private sendWaits(peer: number): boolean {
    return this.spaceWaiters[peer]!.length > 0 || this.slotWaiters[peer]!.length > 0 || this.credit[peer]!.blocked;
  }

  private setAsleep(asleep: boolean): void {
    for (const [peer, ring] of this.receiveRings) ring.asleep = asleep && this.receiving[peer]! > 0;
    for (const [peer, ring] of this.sendRings) ring.asleep = asleep && this.sendWaits(peer);
  }

  private takeCredit(peer: number): boolean {
    const credit = this.sendRings.get(peer)?.takeCredit() ?? 0;
    if (credit > 0) this.credit[peer]!.release(credit);
    return credit > 0;
  }

  /** Moves every record from `peer` into the mailbox, in ring order; true when any was read. */
  private drain(peer: number): boolean {
    const ring = this.receiveRings.get(peer)!;
    // Re-entry (a delivery that fails the peer drains it) would read the record being read again.
    if (this.lost.has(peer) || this.draining.has(peer)) return false;
    this.draining.add(peer);
    let moved = false;
    try {
      for (;;) {
        if (this.owed[peer]! > 0) {
          const frame = this.early[peer]!.shift();
          if (!frame) break;
          this.owed[peer]! -= 1;
          this.mailbox.deliver(peer, frame);
        } else if (ring.next((message) => this.readRecord(peer, ring, message)) === undefined) break;
        moved = true;
      }
    } catch (error) {
      this.lost.add(peer);
      this.dropLink(peer, error instanceof SeqparError ? error : new SeqparError('ERR_BAD_FRAME', String(error)));
    } finally {
      this.draining.delete(peer);
    }
    if (moved && ring.senderAsleep) this.sendControl(peer, WAKE);
    return moved;
  }

  private readRecord(peer: number, ring: ReceiveRing, message: Buffer): true {
    const record = decodeMessage(message);
    if (record.kind !== WireKind.Data) throw new SeqparError('ERR_BAD_FRAME', `rank ${peer} put a non-data record in its ring`);
    const { tag, header, payload, ref } = record;
    if (!ref) {
      this.mailbox.deliver(peer, receivedFrame(tag, header, payload.slice()));
    } else if (ref.length === 0) {
      this.owed[peer]! += 1;
    } else {
      const [slot, byteLength] = ref as [number, number];
      const view = ring.lend(slot, byteLength);
      const release = () => {
        ring.release(slot);
        if (ring.senderAsleep && !this.isClosed) this.sendControl(peer, WAKE);
      };
      this.mailbox.deliver(peer, receivedFrame(tag, header, view, release));
    }
    return true;
  }

  /** A frame that came by socket: it takes its place at its marker in the ring. */
  protected override onData(from: number, tag: string, header: FrameHeader, payload: Uint8Array, ref: unknown[] | undefined): void {
    if (ref || !this.receiveRings.has(from)) return super.onData(from, tag, header, payload, ref);
    this.early[from]!.push(receivedFrame(tag, header, payload));
    this.drain(from);
  }

  protected override returnCredit(from: number, cost: number): void {
    const ring = this.receiveRings.get(from);
    if (!ring) return super.returnCredit(from, cost);
    ring.returnCredit(cost);
    if (ring.senderAsleep) this.sendControl(from, WAKE);
  }

  protected override onControl(from: number, control: Record<string, unknown>): void {
    if (control.wake === 1) return this.poller.kick();
    if (typeof control.ring === 'string' && !this.receiveRings.has(from)) return this.mapRing(from, control.ring, control);
    if (typeof control.mapped === 'string' && control.mapped === this.sendRings.get(from)?.name) return this.onMapped(from);
    super.onControl(from, control);
  }

  /** Frames the peer wrote before it went are still delivered; waiting sends to it fail. */
  protected override failPeer(peer: number, error: SeqparError): void {
    if (this.receiveRings.has(peer)) this.drain(peer);
    this.lost.add(peer);
    this.lanes.fail(peer, 'ERR_PEER_LOST');
    super.failPeer(peer, error);
    for (const waiter of this.spaceWaiters[peer]?.splice(0) ?? []) waiter.reject(error);
    for (const done of [...(this.slotWaiters[peer] ?? [])]) done(false);
  }

  /** The peer announced the ring it sends to us through: map it (which unlinks its name) and say so. */
  private mapRing(from: number, name: string, announced: Record<string, unknown>): void {
    if (!name.endsWith(`-${from}-${this.rank}`)) throw new SeqparError('ERR_BAD_FRAME', `rank ${from} announced a ring not addressed from it to rank ${this.rank}: ${name}`);
    const shape = { ringBytes: announced.ringBytes, slots: announced.slots, slotBytes: announced.slotBytes } as RingShape;
    try {
      checkRingShape(shape);
    } catch {
      throw new SeqparError('ERR_BAD_FRAME', `rank ${from} announced a ring of an impossible shape (at most ${MAX_SLOTS} slots)`);
    }
    this.lanes.open(from, announced.lane, announced.bell);
    this.receiveRings.set(from, new ReceiveRing(name, shape));
    this.sendControl(from, { mapped: name });
  }

  private onMapped(peer: number): void {
    this.sendRings.get(peer)!.unlink();
    this.lanes.unlink(peer);
    this.awaitingMap.get(peer)?.();
    this.awaitingMap.delete(peer);
  }

  protected override async shutdown(): Promise<void> {
    this.poller.stop();
    const closed = new SeqparError('ERR_CLOSED', `transport of rank ${this.rank} is closed`);
    for (const waiters of this.spaceWaiters) for (const waiter of waiters.splice(0)) waiter.reject(closed);
    await super.shutdown();
    for (const ring of this.sendRings.values()) ring.close();
    this.sendRings.clear();
    for (const ring of this.receiveRings.values()) ring.close();
    this.receiveRings.clear();
    this.lanes.close();
  }
}
