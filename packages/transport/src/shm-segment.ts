import { unlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { SeqparError } from '@seqpar/core';

/**
 * POSIX shared-memory segments through the optional native module shm-typed-array: created by the sending end of
 * a ring, mapped by the receiving end, which unlinks the name at once (the kernel keeps a mapped, unlinked segment
 * alive until its last mapping goes, so a kill -9 of both ends leaves nothing behind).
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

/** A new segment of `bytes` (zero-filled by the kernel) named /seqpar-<creator pid>-<random>-<from>-<to>. */
export function createSegment(name: string, bytes: number): Buffer {
  const memory = loadShm().create(bytes, 'Buffer', name);
  if (!memory) throw new SeqparError('ERR_TRANSPORT_UNAVAILABLE', `cannot create shared memory segment ${name}`);
  created.add(name);
  return memory;
}

/** Maps a segment another process announced and unlinks its name. */
export function mapSegment(name: string): Buffer {
  if (!/^\/seqpar-\d+-[0-9a-f]{12}-\d+-\d+$/.test(name)) throw new SeqparError('ERR_BAD_FRAME', `not a seqpar segment name: ${name}`);
  const memory = loadShm().get(name, 'Buffer');
  if (!memory) throw new SeqparError('ERR_BAD_FRAME', `shared memory segment ${name} does not exist`);
  unlinkSegment(name);
  return memory;
}

export function unlinkSegment(name: string): void {
  try {
    unlinkSync(`/dev/shm${name}`);
  } catch {
    // already unlinked by the other side
  }
}

/** Unmaps a segment now, or keeps it mapped until process exit when `keep` (views of it may still be alive). */
export function detachSegment(name: string, memory: Buffer, keep = false): void {
  if (keep) retained.add(memory);
  else loadShm().detach(name, false);
}

/** Both ends in one process share the library's record of a name: only the creator's detach may unmap it. */
export function createdHere(name: string): boolean {
  return created.has(name);
}
