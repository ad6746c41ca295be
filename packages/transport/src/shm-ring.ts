import { unlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { SeqparError } from '@seqpar/core';

/**
 * One directed ring (sender -> receiver) of fixed-size slots in a POSIX shared-memory segment. The sender
 * creates it as soon as the link to the receiver is authenticated and announces its name; the receiver maps it,
 * unlinks the name and acknowledges, and the sender unlinks too (in case the receiver could not). A transport is
 * ready only once every ring it sends through was acknowledged, so while it runs no seqpar name exists in
 * /dev/shm: the kernel keeps a mapped, unlinked segment alive until its last mapping goes, and a kill -9 of both
 * ends leaves nothing behind. (Only a process killed while connecting can leave a segment.)
 *
 *   segment /seqpar-<creator pid>-<random>-<from>-<to>   (slots x slotBytes, mapped by both processes)
 *   +------------------+------------------+-----+------------------+
 *   | slot 0           | slot 1           | ... | slot S-1         |
 *   | payload bytes    | payload bytes    |     | payload bytes    |
 *   +------------------+------------------+-----+------------------+
 *
 *   announce  sender -> receiver, a ws CONTROL frame { ring: segment name }; answered by { mapped: segment name }
 *   doorbell  sender -> receiver, a ws DATA frame without payload:
 *             meta [tag, caller header, [segment name, slot, byte offset, byteLength]]
 *   release   receiver -> sender, a ws CONTROL frame { release: slot }
 *
 *   slot life (sender's view): free -> written, doorbell sent -> in the receiver's queue -> handed to a recv
 *   caller (payload is a view of the slot) -> caller releases the frame (release() or `using`) -> free.
 *
 * The ring itself holds no indices or flags: the socket orders doorbells and carries releases, so the memory is
 * pure payload and a receiver's view needs no copy. Payload views are plain (non-shared) Buffers over the mapping,
 * which ONNX Runtime accepts. Mappings are never unmapped while a view may be alive: a receiver unmaps its mapping
 * on close once every view it lent was released, else keeps it until process exit; a sender unmaps its own on close
 * (it never hands views out).
 *
 * Every mapping is unmapped by an explicit detach, never by garbage collection: shm-typed-array's finalizer unmaps
 * a collected Buffer without marking its record, so its exit hook unmapped that address a second time, by then
 * often reused by a live allocation, and a coordinator that had closed one cluster and run another segfaulted at
 * exit. `retained` holds the mappings that must outlive their ring.
 */

const retained = new Set<Buffer>();
/** Segments this process created: a receiver mapping one (both ends in one process) keeps it, since the library detaches by name. */
const created = new Set<string>();

interface ShmModule {
  create(count: number, typeKey: 'Buffer', key: string): Buffer | null;
  get(key: string, typeKey: 'Buffer'): Buffer | null;
  detach(key: string, forceDestroy?: boolean): number;
}

let shmModule: ShmModule | undefined;

/** The native shm-typed-array binding, loaded on first use; ERR_TRANSPORT_UNAVAILABLE where it cannot load. */
export function loadShm(): ShmModule {
  if (shmModule) return shmModule;
  try {
    shmModule = createRequire(import.meta.url)('shm-typed-array') as ShmModule;
    return shmModule;
  } catch (error) {
    throw new SeqparError(
      'ERR_TRANSPORT_UNAVAILABLE',
      `the shm transport needs the optional native module shm-typed-array, which did not load (${(error as Error).message}); use --transport ws or inproc`,
      { cause: error },
    );
  }
}

export class SendRing {
  readonly name: string;
  private readonly memory: Buffer;
  private readonly free: number[];
  private readonly waiters: (() => void)[] = [];
  /** Set when a wait for a slot timed out (the receiver keeps its slots); cleared by the next release. */
  private starved = false;

  constructor(
    from: number,
    to: number,
    readonly slots: number,
    readonly slotBytes: number,
  ) {
    this.name = `/seqpar-${process.pid}-${randomBytes(6).toString('hex')}-${from}-${to}`;
    const memory = loadShm().create(slots * slotBytes, 'Buffer', this.name);
    if (!memory) throw new SeqparError('ERR_TRANSPORT_UNAVAILABLE', `cannot create shared memory segment ${this.name}`);
    this.memory = memory;
    created.add(this.name);
    this.free = [...Array(slots).keys()];
  }

  /**
   * Copy `payload` into a slot and return its index; undefined when it does not fit or no slot came free within
   * `waitMs` (then later frames skip the wait until a release arrives, so a receiver that keeps its slots costs
   * one wait, not one per frame).
   */
  async write(payload: Uint8Array, waitMs: number): Promise<number | undefined> {
    if (payload.byteLength > this.slotBytes) return undefined;
    if (!this.free.length && !this.starved) {
      await new Promise<void>((resolve) => {
        const wake = () => (clearTimeout(timer), resolve());
        const timer = setTimeout(() => {
          this.starved = true;
          this.waiters.splice(this.waiters.indexOf(wake), 1);
          resolve();
        }, waitMs);
        this.waiters.push(wake);
      });
    }
    const slot = this.free.shift();
    if (slot !== undefined) this.memory.set(payload, slot * this.slotBytes);
    return slot;
  }

  release(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots || this.free.includes(slot)) return;
    this.free.push(slot);
    this.starved = false;
    this.waiters.shift()?.();
  }

  /** The receiver has mapped the segment: its name can go (the memory stays while either end maps it). */
  unlink(): void {
    unlinkQuietly(this.name);
  }

  close(): void {
    unlinkQuietly(this.name);
    loadShm().detach(this.name, false);
  }
}

export class ReceiveRing {
  private readonly memory: Buffer;
  /** Views handed out and not yet released. */
  private lent = 0;

  constructor(readonly name: string) {
    if (!/^\/seqpar-\d+-[0-9a-f]{12}-\d+-\d+$/.test(name)) throw new SeqparError('ERR_BAD_FRAME', `not a seqpar segment name: ${name}`);
    const memory = loadShm().get(name, 'Buffer');
    if (!memory) throw new SeqparError('ERR_BAD_FRAME', `shared memory segment ${name} does not exist`);
    unlinkQuietly(name);
    this.memory = memory;
  }

  view(start: number, byteLength: number): Buffer {
    if (!Number.isInteger(start) || start < 0 || !Number.isInteger(byteLength) || byteLength < 0 || start + byteLength > this.memory.byteLength) {
      throw new SeqparError('ERR_BAD_FRAME', `bytes ${start}+${byteLength} are outside segment ${this.name}`);
    }
    this.lent++;
    return this.memory.subarray(start, start + byteLength);
  }

  /** A view from `view` was released: its bytes are no longer read. */
  returned(): void {
    this.lent--;
  }

  /** Unmaps the segment if no view is out, else keeps it mapped until process exit. */
  close(): void {
    if (this.lent > 0 || created.has(this.name)) retained.add(this.memory);
    else loadShm().detach(this.name, false);
  }
}

function unlinkQuietly(name: string): void {
  try {
    unlinkSync(`/dev/shm${name}`);
  } catch {
    // already unlinked by the other side
  }
}
