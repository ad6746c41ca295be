import { closeSync, openSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { LANE_CLOSED, LANE_PEER_LOST, SeqparError, type LaneEnds } from '@seqpar/core';

/**
 * A decode lane: a pair of small files in /dev/shm between two ranks' processes on one host, one per direction,
 * that a compute thread writes and reads with pwrite/pread (kernels lane-exchange.ts draws the layout). tmpfs is
 * the page cache, so what one process writes the other reads at once, without a native module: the shm ring's
 * module (shm-typed-array) does not load in a worker thread, and the ring's socket wake is the main thread's. A
 * decode step thus exchanges its per-layer partials inside its one compute-thread chain instead of going back to
 * the main thread each layer.
 *
 * The writer creates its file beside its ring and announces the name with the ring's; the reader opens it; the
 * writer unlinks the name once the reader has mapped the ring (the same moment the ring's name goes), so a kill -9
 * leaves nothing in /dev/shm. File descriptors are process-wide: the compute thread uses the numbers opened here.
 */

/** One peer's lane on this process, both directions. */
export class DecodeLane {
  readonly state = new Int32Array(new SharedArrayBuffer(4));
  private seq = 0;
  private users = 0;

  constructor(
    private readonly sendFd: number,
    private readonly recvFd: number,
  ) {}

  /**
   * The next exchange's ends, held open until `release` (a close meanwhile only marks the lane, so the thread
   * never reads a descriptor number the process has reused). Seq 0 is never used: a file not yet written reads 0.
   */
  acquire(): { ends: LaneEnds; release: () => void } {
    if (this.state[0] === LANE_CLOSED) throw new SeqparError('ERR_CLOSED', 'the decode lane is closed');
    this.users += 1;
    this.seq = (this.seq % 0xffffffff) + 1;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.users -= 1;
      if (this.users === 0 && this.state[0] === LANE_CLOSED) this.closeFiles();
    };
    return { ends: { sendFd: this.sendFd, recvFd: this.recvFd, state: this.state, seq: this.seq }, release };
  }

  /** Wakes and fails any exchange waiting on the lane; a closed lane stays closed. */
  mark(state: typeof LANE_PEER_LOST | typeof LANE_CLOSED): void {
    if (this.state[0] === LANE_CLOSED) return;
    Atomics.store(this.state, 0, state);
    Atomics.notify(this.state, 0);
    if (state === LANE_CLOSED && this.users === 0) this.closeFiles();
  }

  private closeFiles(): void {
    closeQuietly(this.sendFd);
    closeQuietly(this.recvFd);
  }
}

/**
 * The lanes of one transport endpoint, built as its shm links come up: `create` the file we write to a peer
 * (announced with the ring), `open` the one it announced to us, `unlink` ours once it has opened it.
 */
export class DecodeLanes {
  private readonly created = new Map<number, { name: string; fd: number }>();
  private readonly opened = new Map<number, number>();
  private readonly lanes = new Map<number, DecodeLane>();

  constructor(private readonly rank: number) {}

  /** Creates the file we write to `peer`; returns its name (/seqpar-<pid>-<random>-<from>-<to>, like a ring's). */
  create(peer: number): string {
    const name = `/seqpar-${process.pid}-${randomBytes(6).toString('hex')}-${this.rank}-${peer}`;
    this.created.set(peer, { name, fd: openSync(`/dev/shm${name}`, 'wx+', 0o600) });
    this.pair(peer);
    return name;
  }

  /** Opens the file `peer` announced for writing to us. */
  open(peer: number, name: string): void {
    if (!new RegExp(`^/seqpar-\\d+-[0-9a-f]{12}-${peer}-${this.rank}$`).test(name)) {
      throw new SeqparError('ERR_BAD_FRAME', `rank ${peer} announced a decode lane not addressed from it to rank ${this.rank}: ${name}`);
    }
    try {
      this.opened.set(peer, openSync(`/dev/shm${name}`, 'r'));
    } catch (error) {
      throw new SeqparError('ERR_BAD_FRAME', `decode lane ${name} from rank ${peer} cannot be opened: ${(error as Error).message}`, { cause: error });
    }
    this.pair(peer);
  }

  /** The peer has opened our file: its name goes. */
  unlink(peer: number): void {
    const created = this.created.get(peer);
    if (created) unlinkQuietly(created.name);
  }

  /** The lane to `peer` once both of its files are open. */
  get(peer: number): DecodeLane | undefined {
    return this.lanes.get(peer);
  }

  markLost(peer: number): void {
    this.lanes.get(peer)?.mark(LANE_PEER_LOST);
  }

  close(): void {
    for (const [peer, { name, fd }] of this.created) {
      unlinkQuietly(name);
      if (!this.lanes.has(peer)) closeQuietly(fd);
    }
    for (const [peer, fd] of this.opened) if (!this.lanes.has(peer)) closeQuietly(fd);
    for (const lane of this.lanes.values()) lane.mark(LANE_CLOSED);
    this.created.clear();
    this.opened.clear();
    this.lanes.clear();
  }

  private pair(peer: number): void {
    const created = this.created.get(peer);
    const opened = this.opened.get(peer);
    if (created && opened !== undefined) this.lanes.set(peer, new DecodeLane(created.fd, opened));
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
