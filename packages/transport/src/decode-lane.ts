import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { LANE_OPEN, laneState, SeqparError, type LaneEnds, type LaneFailure } from '@seqpar/core';

/**
 * A decode lane: files in /dev/shm between two ranks' processes on one host that a compute thread writes and reads
 * with pwrite/pread (kernels lane-exchange.ts draws the layout), plus a FIFO per direction as its doorbell. tmpfs
 * is the page cache, so what one process writes the other reads at once, and a blocking read of a FIFO sleeps in
 * the kernel until the peer writes a byte: a wait costs no CPU and ends at once, with no native module (the shm
 * ring's, shm-typed-array, does not load in a worker thread, and the ring's wake is the main thread's socket). A
 * decode step thus exchanges its per-layer partials inside its one compute-thread chain.
 *
 * The writer of a direction creates its file and its FIFO beside its ring and announces their names with the
 * ring's; the reader opens them; the writer unlinks the names once the reader has mapped the ring (the moment the
 * ring's name goes), so a kill -9 leaves nothing in /dev/shm. File descriptors are process-wide: the compute thread
 * uses the numbers opened here. Both ends open a FIFO read-write, which on Linux neither blocks nor sees an end of
 * file, and lets this process ring its own bell to wake its waiting thread when the lane fails.
 */

/** The four descriptors of one peer's lane. */
interface LaneFiles {
  readonly sendFd: number;
  readonly recvFd: number;
  readonly sendBell: number;
  readonly recvBell: number;
}

/** One peer's lane on this process, both directions. */
export class DecodeLane {
  readonly state = new Int32Array(new SharedArrayBuffer(4));
  private seq = 0;
  private users = 0;
  private closed = false;

  constructor(private readonly files: LaneFiles) {}

  /**
   * The next exchange's ends, held open until `release` (a close meanwhile only fails the lane, so the thread
   * never uses a descriptor number the process has reused). Seq 0 is never used: a file not yet written reads 0.
   */
  acquire(): { ends: LaneEnds; release: () => void } {
    if (this.closed) throw new SeqparError('ERR_CLOSED', 'the decode lane is closed');
    this.users += 1;
    this.seq = (this.seq % 0xffffffff) + 1;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.users -= 1;
      if (this.users === 0 && this.closed) this.closeFiles();
    };
    return { ends: { ...this.files, state: this.state, seq: this.seq }, release };
  }

  /**
   * Fails the lane for good: a thread waiting on it wakes (a byte on its own bell) and fails with `failure`, and so
   * does every later exchange. A lane that timed out or was aborted mid-exchange has lost count of its bytes, so it
   * cannot be reused; the request fails, and the runtime's world reset gives the next one fresh lanes.
   */
  fail(failure: LaneFailure): void {
    if (this.state[0] !== LANE_OPEN) return;
    Atomics.store(this.state, 0, laneState(failure));
    if (!this.closed) writeSync(this.files.recvBell, WAKE);
  }

  close(): void {
    this.fail('ERR_CLOSED');
    if (this.closed) return;
    this.closed = true;
    if (this.users === 0) this.closeFiles();
  }

  private closeFiles(): void {
    for (const fd of Object.values(this.files)) closeQuietly(fd);
  }
}

const WAKE = Uint8Array.of(1);

/**
 * The lanes of one transport endpoint, built as its shm links come up: `create` the file and bell we write to a
 * peer (announced with the ring), `open` the ones it announced to us, `unlink` ours once it has opened them.
 */
export class DecodeLanes {
  private readonly created = new Map<number, { names: [string, string]; fds: [number, number] }>();
  private readonly opened = new Map<number, [number, number]>();
  private readonly lanes = new Map<number, DecodeLane>();

  constructor(private readonly rank: number) {}

  /**
   * Creates the file and the bell we write to `peer`; returns their names (/seqpar-<pid>-<random>-<from>-<to>, like
   * a ring's), or nothing where the host cannot make a FIFO (no `mkfifo` command): then neither side of the link
   * has a lane, and decode exchanges on the main thread.
   */
  create(peer: number): { lane?: string; bell?: string } {
    const [lane, bell] = [this.nameTo(peer), this.nameTo(peer)];
    try {
      execFileSync('mkfifo', ['-m', '600', `/dev/shm${bell}`], { stdio: 'ignore' });
    } catch {
      return {};
    }
    this.created.set(peer, { names: [lane, bell], fds: [openSync(`/dev/shm${lane}`, 'wx+', 0o600), openSync(`/dev/shm${bell}`, 'r+')] });
    this.pair(peer);
    return { lane, bell };
  }

  /** Opens the file and the bell `peer` announced for writing to us (it announced none where it could not make them). */
  open(peer: number, lane: unknown, bell: unknown): void {
    if (lane === undefined && bell === undefined) return;
    const pattern = new RegExp(`^/seqpar-\\d+-[0-9a-f]{12}-${peer}-${this.rank}$`);
    if (typeof lane !== 'string' || typeof bell !== 'string' || !pattern.test(lane) || !pattern.test(bell)) {
      throw new SeqparError('ERR_BAD_FRAME', `rank ${peer} announced a decode lane not addressed from it to rank ${this.rank}`);
    }
    try {
      this.opened.set(peer, [openSync(`/dev/shm${lane}`, 'r'), openSync(`/dev/shm${bell}`, 'r+')]);
    } catch (error) {
      throw new SeqparError('ERR_BAD_FRAME', `the decode lane from rank ${peer} cannot be opened: ${(error as Error).message}`, { cause: error });
    }
    this.pair(peer);
  }

  /** The peer has opened our file and bell: their names go. */
  unlink(peer: number): void {
    for (const name of this.created.get(peer)?.names ?? []) unlinkQuietly(name);
  }

  /** The lane to `peer` once both directions are open. */
  get(peer: number): DecodeLane | undefined {
    return this.lanes.get(peer);
  }

  fail(peer: number, failure: LaneFailure): void {
    this.lanes.get(peer)?.fail(failure);
  }

  close(): void {
    for (const [peer, { names, fds }] of this.created) {
      names.forEach(unlinkQuietly);
      if (!this.lanes.has(peer)) fds.forEach(closeQuietly);
    }
    for (const [peer, fds] of this.opened) if (!this.lanes.has(peer)) fds.forEach(closeQuietly);
    for (const lane of this.lanes.values()) lane.close();
    this.created.clear();
    this.opened.clear();
    this.lanes.clear();
  }

  private nameTo(peer: number): string {
    return `/seqpar-${process.pid}-${randomBytes(6).toString('hex')}-${this.rank}-${peer}`;
  }

  private pair(peer: number): void {
    const created = this.created.get(peer);
    const opened = this.opened.get(peer);
    if (created && opened) this.lanes.set(peer, new DecodeLane({ sendFd: created.fds[0], recvFd: opened[0], sendBell: created.fds[1], recvBell: opened[1] }));
  }
}

function unlinkQuietly(name: string): void {
  try {
    unlinkSync(`/dev/shm${name}`);
  } catch {
    // already gone
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
