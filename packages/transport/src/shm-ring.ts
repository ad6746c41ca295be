import { randomBytes } from 'node:crypto';
import { SeqparError } from '@seqpar/core';
import { createdHere, createSegment, detachSegment, mapSegment, unlinkSegment } from './shm-segment.js';

/**
 * One directed link (sender -> receiver) in one POSIX shared-memory segment: control words, a ring of records
 * (small frames, slot doorbells, markers for frames that travel by socket) and fixed-size payload slots. The
 * sender creates the segment once the link's socket is authenticated and announces its name over it; the receiver
 * maps it and unlinks the name (shm-segment.ts). After that, frames move without the socket: a frame is a record
 * the receiver finds by polling HEAD, and the socket only wakes a side that stopped polling.
 *
 *   segment /seqpar-<creator pid>-<random>-<from>-<to>
 *   +---------------------+-------------------------------------+----------+----------+-----+
 *   | control (4 KiB)     | record ring (ringBytes, power of 2) | slot 0   | slot 1   | ... |
 *   +---------------------+-------------------------------------+----------+----------+-----+
 *   control: Int32 words, each written by one side, the hot ones on their own 64-byte line
 *     HEAD         sender    ring bytes published (wraps at 2^32)
 *     TAIL         receiver  ring bytes consumed
 *     CONSUMED     receiver  credit: frame cost its callers took (credit-window.ts; wraps at 2^32)
 *     RECV_ASLEEP  receiver  1: it waits for a record but stopped polling; a sender that publishes wakes it
 *     SEND_ASLEEP  sender    1: it waits for ring space, credit or a slot but stopped polling; the receiver wakes it
 *     SLOT_BUSY[i] both      sender sets 1 when it fills slot i, receiver sets 0 when that frame is released
 *   record: | length L (i32) | 0 (i32) | wire-frame DATA message, L bytes | pad to 8 |   L = -1: skip to ring start
 *     DATA meta [tag, header]: payload inline, copied out by the receiver (frames below `inlineBelow`)
 *     DATA meta [tag, header, [slot, byteLength]]: payload in slot `slot`, lent to the caller until released
 *     DATA meta [tag, header, []]: the frame is the next DATA that arrives on the socket (too big for a slot,
 *       no slot came free, or too big for the ring); the receiver holds later records back until it came
 *
 * Control words and records are read and written with Atomics (sequentially consistent), so a sender that
 * publishes HEAD and then reads RECV_ASLEEP, and a receiver that sets RECV_ASLEEP and then reads HEAD, cannot both
 * miss each other: every wake that matters is sent. Payload views are plain (non-shared) Buffers over the mapping,
 * which ONNX Runtime accepts; a receiver keeps its mapping until process exit if a view is still lent when it closes.
 */

const CONTROL_BYTES = 4096;
const HEAD = 0;
const TAIL = 16;
const CONSUMED = 32;
const RECV_ASLEEP = 48;
const SEND_ASLEEP = 64;
const SLOT_BUSY = 80;
/** Slots a ring may have: their flags share the control block's last lines. */
export const MAX_SLOTS = CONTROL_BYTES / 4 - SLOT_BUSY;
const RECORD_HEADER = 8;
const WRAP = -1;
const align8 = (n: number) => (n + 7) & ~7;

export interface RingShape {
  ringBytes: number;
  slots: number;
  slotBytes: number;
}

/** Views of one segment shared by both ends; the side-specific classes below use what their side may touch. */
abstract class RingSegment {
  protected readonly words: Int32Array;
  protected readonly records: Buffer;
  protected readonly recordWords: Int32Array;
  readonly ringBytes: number;

  protected constructor(
    readonly name: string,
    protected readonly memory: Buffer,
    readonly shape: RingShape,
  ) {
    const expected = CONTROL_BYTES + shape.ringBytes + shape.slots * shape.slotBytes;
    if (memory.byteLength < expected) throw new SeqparError('ERR_BAD_FRAME', `segment ${name} holds ${memory.byteLength} bytes, not ${expected}`);
    this.ringBytes = shape.ringBytes;
    this.words = new Int32Array(memory.buffer, memory.byteOffset, CONTROL_BYTES / 4);
    this.records = memory.subarray(CONTROL_BYTES, CONTROL_BYTES + shape.ringBytes);
    this.recordWords = new Int32Array(memory.buffer, memory.byteOffset + CONTROL_BYTES, shape.ringBytes / 4);
  }

  protected slotOffset(slot: number): number {
    return CONTROL_BYTES + this.ringBytes + slot * this.shape.slotBytes;
  }
}

export function checkRingShape(shape: RingShape): void {
  const { ringBytes, slots, slotBytes } = shape;
  if (!Number.isInteger(ringBytes) || ringBytes < 4096 || ringBytes > 2 ** 30 || (ringBytes & (ringBytes - 1)) !== 0) {
    throw new SeqparError('ERR_USAGE', `shm ringBytes must be a power of two from 4096 to 2^30, got ${ringBytes}`);
  }
  if (!Number.isInteger(slots) || slots < 0 || slots > MAX_SLOTS) throw new SeqparError('ERR_USAGE', `shm slots must be 0..${MAX_SLOTS}, got ${slots}`);
  if (!Number.isInteger(slotBytes) || slotBytes < 0 || slotBytes % 8 !== 0) throw new SeqparError('ERR_USAGE', `shm slotBytes must be a multiple of 8, got ${slotBytes}`);
}

export class SendRing extends RingSegment {
  private head = 0;
  private seenConsumed = 0;

  constructor(from: number, to: number, shape: RingShape) {
    const name = `/seqpar-${process.pid}-${randomBytes(6).toString('hex')}-${from}-${to}`;
    super(name, createSegment(name, CONTROL_BYTES + shape.ringBytes + shape.slots * shape.slotBytes), shape);
  }

  /** Largest message one record can carry: a bigger frame travels by socket behind a marker record. */
  get maxRecord(): number {
    return this.ringBytes / 4;
  }

  /** Appends one record holding `message`; false when the ring lacks room (the receiver has not read far enough). */
  tryAppend(message: Uint8Array): boolean {
    const size = align8(RECORD_HEADER + message.byteLength);
    const tail = Atomics.load(this.words, TAIL);
    let at = this.head & (this.ringBytes - 1);
    const skip = this.ringBytes - at < size ? this.ringBytes - at : 0;
    if (((this.head - tail) >>> 0) + skip + size > this.ringBytes) return false;
    if (skip) {
      Atomics.store(this.recordWords, at >> 2, WRAP);
      this.head = (this.head + skip) | 0;
      at = 0;
    }
    this.records.set(message, at + RECORD_HEADER);
    Atomics.store(this.recordWords, at >> 2, message.byteLength);
    this.head = (this.head + size) | 0;
    Atomics.store(this.words, HEAD, this.head);
    return true;
  }

  get receiverAsleep(): boolean {
    return Atomics.load(this.words, RECV_ASLEEP) !== 0;
  }

  set asleep(asleep: boolean) {
    Atomics.store(this.words, SEND_ASLEEP, asleep ? 1 : 0);
  }

  /** Credit the receiver returned since the last call (bytes). */
  takeCredit(): number {
    const consumed = Atomics.load(this.words, CONSUMED);
    const credit = (consumed - this.seenConsumed) >>> 0;
    this.seenConsumed = consumed;
    return credit;
  }

  /** Copies `payload` into a free slot and marks it busy; undefined when every slot is lent out. */
  fillSlot(payload: Uint8Array): number | undefined {
    for (let slot = 0; slot < this.shape.slots; slot += 1) {
      if (Atomics.load(this.words, SLOT_BUSY + slot) !== 0) continue;
      Atomics.store(this.words, SLOT_BUSY + slot, 1);
      this.memory.set(payload, this.slotOffset(slot));
      return slot;
    }
    return undefined;
  }

  hasFreeSlot(): boolean {
    for (let slot = 0; slot < this.shape.slots; slot += 1) if (Atomics.load(this.words, SLOT_BUSY + slot) === 0) return true;
    return false;
  }

  /** The receiver has mapped the segment: its name can go (the memory stays while either end maps it). */
  unlink(): void {
    unlinkSegment(this.name);
  }

  close(): void {
    unlinkSegment(this.name);
    detachSegment(this.name, this.memory);
  }
}

export class ReceiveRing extends RingSegment {
  private tail = 0;
  /** Slot views handed out and not yet released. */
  private lent = 0;

  constructor(name: string, shape: RingShape) {
    super(name, mapSegment(name), shape);
  }

  /** True when a record waits. */
  get pending(): boolean {
    return Atomics.load(this.words, HEAD) !== this.tail;
  }

  /**
   * Hands the next record's message to `read` (a view, valid only during the call) and consumes it; undefined
   * when the ring is empty. A length the sender could not have written is ERR_BAD_FRAME.
   */
  next<T>(read: (message: Buffer) => T): T | undefined {
    for (;;) {
      if (Atomics.load(this.words, HEAD) === this.tail) return undefined;
      const at = this.tail & (this.ringBytes - 1);
      const length = Atomics.load(this.recordWords, at >> 2);
      if (length === WRAP) {
        this.advance(this.ringBytes - at);
        continue;
      }
      if (length < 0 || at + RECORD_HEADER + length > this.ringBytes) throw new SeqparError('ERR_BAD_FRAME', `record of ${length} bytes at ${at} runs past ring ${this.name}`);
      try {
        return read(this.records.subarray(at + RECORD_HEADER, at + RECORD_HEADER + length));
      } finally {
        this.advance(align8(RECORD_HEADER + length));
      }
    }
  }

  set asleep(asleep: boolean) {
    Atomics.store(this.words, RECV_ASLEEP, asleep ? 1 : 0);
  }

  get senderAsleep(): boolean {
    return Atomics.load(this.words, SEND_ASLEEP) !== 0;
  }

  /** The local caller took `cost` bytes of frames: the sender may queue that much more. */
  returnCredit(cost: number): void {
    Atomics.add(this.words, CONSUMED, cost);
  }

  /** A view of a slot's payload, lent to a caller until `release(slot)`. */
  lend(slot: number, byteLength: number): Buffer {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.shape.slots || !Number.isInteger(byteLength) || byteLength < 0 || byteLength > this.shape.slotBytes) {
      throw new SeqparError('ERR_BAD_FRAME', `slot ${slot} with ${byteLength} bytes is outside segment ${this.name}`);
    }
    this.lent++;
    const start = this.slotOffset(slot);
    return this.memory.subarray(start, start + byteLength);
  }

  release(slot: number): void {
    this.lent--;
    Atomics.store(this.words, SLOT_BUSY + slot, 0);
  }

  /** Unmaps the segment if no view is out, else keeps it mapped until process exit. */
  close(): void {
    detachSegment(this.name, this.memory, this.lent > 0 || createdHere(this.name));
  }

  private advance(bytes: number): void {
    this.tail = (this.tail + bytes) | 0;
    Atomics.store(this.words, TAIL, this.tail);
  }
}
