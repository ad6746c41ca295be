import { SeqparError } from '@seqpar/core';
import { receivedFrame } from './received-frame.js';
import { loadShm, ReceiveRing, SendRing } from './shm-ring.js';
import type { FrameHeader, Transport } from './transport.js';
import { WsTransport, type WsTransportOptions } from './ws-transport.js';

/** Bytes per shm slot unless told otherwise: payloads up to this size travel through shared memory. */
export const SHM_DEFAULT_SLOT_BYTES = 16 * 2 ** 20;

export interface ShmTransportOptions extends WsTransportOptions {
  /** Slots per directed ring. Default 4. */
  slots?: number;
  /** Bytes per slot; larger payloads travel over the socket instead. Default 16 MiB. */
  slotBytes?: number;
  /** Payloads smaller than this go over the socket (a doorbell costs as much as the bytes). Default 16 KiB. */
  inlineBelow?: number;
  /** How long a send waits for a released slot before it goes over the socket. Default 200 ms. */
  slotWaitMs?: number;
}

/**
 * Same-host transport: payloads go through POSIX shared-memory slot rings (shm-ring.ts), and the authenticated
 * WebSocket link of the ws transport carries the ring announcements, doorbells, releases, credit and heartbeats.
 * A received payload is a view of its slot (no copy, ORT-compatible); releasing the frame hands the slot back.
 * When a ring has no free slot within `slotWaitMs` (unreleased frames) or the payload exceeds a slot, the frame
 * travels inline over the socket; either way frames of one (peer, tag) reach the socket in send order.
 */
export async function createShmTransport(options: ShmTransportOptions): Promise<Transport> {
  loadShm();
  const transport = new ShmTransport(options);
  await transport.connect();
  return transport;
}

const EMPTY = new Uint8Array(0);

class ShmTransport extends WsTransport {
  private readonly sendRings = new Map<number, SendRing>();
  private readonly receiveRings = new Map<number, ReceiveRing>();
  /** Per peer whose receiver has not yet mapped our ring: resolves when it has (and the name is gone). */
  private readonly awaitingMap = new Map<number, () => void>();
  private readonly mapped: Promise<void>[] = [];
  /** Per (peer, tag): settles once the latest send on it has been handed to the socket. */
  private readonly handoffs = new Map<string, Promise<void>>();
  private readonly slots: number;
  private readonly slotBytes: number;
  private readonly inlineBelow: number;
  private readonly slotWaitMs: number;

  constructor(private readonly shmOptions: ShmTransportOptions) {
    super(shmOptions, 'shm');
    this.slots = shmOptions.slots ?? 4;
    this.slotBytes = shmOptions.slotBytes ?? SHM_DEFAULT_SLOT_BYTES;
    this.inlineBelow = shmOptions.inlineBelow ?? 16 * 1024;
    this.slotWaitMs = shmOptions.slotWaitMs ?? 200;
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

  protected override onLinked(peer: number): void {
    const ring = new SendRing(this.rank, peer, this.slots, this.slotBytes);
    this.sendRings.set(peer, ring);
    this.mapped.push(new Promise<void>((resolve) => this.awaitingMap.set(peer, resolve)));
    this.sendControl(peer, { ring: ring.name });
  }

  protected override async transmit(to: number, tag: string, header: FrameHeader, payload: Uint8Array): Promise<void> {
    // The slot wait can outlast a later send on the same tag that needs no slot: each send hands its frame to
    // the socket only after the previous send of its (peer, tag) did, which keeps the FIFO promise.
    const key = `${to}\u0000${tag}`;
    const previous = this.handoffs.get(key);
    let handedOff!: () => void;
    const mine = new Promise<void>((resolve) => (handedOff = resolve));
    this.handoffs.set(key, mine);
    try {
      const ref = await this.placeInSlot(to, payload);
      await previous;
      const sending = ref ? super.transmit(to, tag, header, EMPTY, ref) : super.transmit(to, tag, header, payload);
      handedOff();
      await sending;
    } finally {
      handedOff();
      if (this.handoffs.get(key) === mine) this.handoffs.delete(key);
    }
  }

  /** Copies the payload into a free slot of the ring to `to` and returns its doorbell reference, or undefined to send it inline. */
  private async placeInSlot(to: number, payload: Uint8Array): Promise<unknown[] | undefined> {
    const ring = this.sendRings.get(to);
    if (!ring || payload.byteLength < this.inlineBelow || payload.byteLength > this.slotBytes) return undefined;
    const slot = await ring.write(payload, this.slotWaitMs);
    return slot === undefined ? undefined : [ring.name, slot, slot * ring.slotBytes, payload.byteLength];
  }

  protected override onData(from: number, tag: string, header: FrameHeader, payload: Uint8Array, ref: unknown[] | undefined): void {
    if (!ref) return super.onData(from, tag, header, payload, undefined);
    const [name, slot, offset, byteLength] = ref;
    const ring = this.receiveRings.get(from);
    if (!ring || name !== ring.name || typeof slot !== 'number') throw new SeqparError('ERR_BAD_FRAME', `bad shm reference from rank ${from}`);
    const view = ring.view(offset as number, byteLength as number);
    const release = () => {
      ring.returned();
      if (!this.isClosed) this.sendControl(from, { release: slot });
    };
    this.mailbox.deliver(from, receivedFrame(tag, header, view, release));
  }

  protected override onControl(from: number, control: Record<string, unknown>): void {
    if (typeof control.release === 'number' && this.sendRings.has(from)) return this.sendRings.get(from)!.release(control.release);
    if (typeof control.ring === 'string' && !this.receiveRings.has(from)) return this.mapRing(from, control.ring);
    if (typeof control.mapped === 'string' && control.mapped === this.sendRings.get(from)?.name) return this.onMapped(from);
    super.onControl(from, control);
  }

  /** The peer announced the ring it sends to us through: map it (which unlinks its name) and say so. */
  private mapRing(from: number, name: string): void {
    if (!name.endsWith(`-${from}-${this.rank}`)) throw new SeqparError('ERR_BAD_FRAME', `rank ${from} announced a ring not addressed from it to rank ${this.rank}: ${name}`);
    this.receiveRings.set(from, new ReceiveRing(name));
    this.sendControl(from, { mapped: name });
  }

  private onMapped(peer: number): void {
    this.sendRings.get(peer)!.unlink();
    this.awaitingMap.get(peer)?.();
    this.awaitingMap.delete(peer);
  }

  protected override async shutdown(): Promise<void> {
    await super.shutdown();
    for (const ring of this.sendRings.values()) ring.close();
    this.sendRings.clear();
    for (const ring of this.receiveRings.values()) ring.close();
    this.receiveRings.clear();
  }
}
