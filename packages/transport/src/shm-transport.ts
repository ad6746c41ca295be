import { SeqparError } from '@seqpar/core';
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
 * WebSocket link of the ws transport carries the doorbells, releases, credit and heartbeats. A received
 * payload is a view of its slot (no copy, ORT-compatible); `frame.release()` hands the slot back. When a ring
 * has no free slot within `slotWaitMs` (unreleased frames) or the payload exceeds a slot, the frame travels inline over the socket.
 */
export async function createShmTransport(options: ShmTransportOptions): Promise<Transport> {
  loadShm();
  const transport = new ShmTransport(options);
  await transport.connect();
  return transport;
}

class ShmTransport extends WsTransport {
  private readonly sendRings = new Map<number, SendRing>();
  private readonly receiveRings = new Map<string, ReceiveRing>();
  private readonly slots: number;
  private readonly slotBytes: number;
  private readonly inlineBelow: number;
  private readonly slotWaitMs: number;

  constructor(options: ShmTransportOptions) {
    super(options, 'shm');
    this.slots = options.slots ?? 4;
    this.slotBytes = options.slotBytes ?? SHM_DEFAULT_SLOT_BYTES;
    this.inlineBelow = options.inlineBelow ?? 16 * 1024;
    this.slotWaitMs = options.slotWaitMs ?? 200;
  }

  protected override async transmit(to: number, tag: string, header: FrameHeader, payload: Uint8Array): Promise<void> {
    if (payload.byteLength >= this.inlineBelow && payload.byteLength <= this.slotBytes) {
      const ring = this.sendRing(to);
      const slot = await ring.write(payload, this.slotWaitMs);
      if (slot !== undefined) {
        return super.transmit(to, tag, header, new Uint8Array(0), [ring.name, slot, slot * ring.slotBytes, payload.byteLength]);
      }
    }
    return super.transmit(to, tag, header, payload);
  }

  protected override onData(from: number, tag: string, header: FrameHeader, payload: Uint8Array, ref: unknown[] | undefined): void {
    if (!ref) return super.onData(from, tag, header, payload, undefined);
    const [name, slot, offset, byteLength] = ref;
    if (typeof name !== 'string' || !name.endsWith(`-${from}-${this.rank}`) || typeof slot !== 'number') {
      throw new SeqparError('ERR_BAD_FRAME', `bad shm reference from rank ${from}`);
    }
    let ring = this.receiveRings.get(name);
    if (!ring) {
      ring = new ReceiveRing(name);
      this.receiveRings.set(name, ring);
    }
    const lender = ring;
    const view = lender.view(offset as number, byteLength as number);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      lender.returned();
      if (!this.isClosed) this.sendControl(from, { release: slot });
    };
    this.mailbox.deliver(from, { tag, header, payload: view, release });
  }

  protected override onControl(from: number, control: Record<string, unknown>): void {
    const ring = this.sendRings.get(from);
    if (!ring || typeof control.release !== 'number') return super.onControl(from, control);
    ring.release(control.release);
  }

  protected override async shutdown(): Promise<void> {
    await super.shutdown();
    for (const ring of this.sendRings.values()) ring.close();
    this.sendRings.clear();
    for (const ring of this.receiveRings.values()) ring.close();
    this.receiveRings.clear();
  }

  private sendRing(to: number): SendRing {
    let ring = this.sendRings.get(to);
    if (!ring) {
      ring = new SendRing(this.rank, to, this.slots, this.slotBytes);
      this.sendRings.set(to, ring);
    }
    return ring;
  }
}
