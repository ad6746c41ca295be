import { readSync, writeSync } from 'node:fs';
import {
  gatherPartialRows,
  LANE_FAILURES,
  LANE_OPEN,
  MASKED_SCORE,
  mergeInto,
  scatterPartialRows,
  SeqparError,
  type LaneEnds,
  type LaneFailure,
  type PartialAttention,
} from '@seqpar/core';

/**
 * The decode exchange as a compute-thread chain step: this rank's partial (out, lse) of some decode rows goes to
 * every other rank through its decode lane (transport decode-lane.ts), and every rank merges all of them in rank
 * order, so all hold the same bits (what strategies' gatherDecodePartials does on the main thread). A decode step
 * is then ONE chain for all layers, without a hop to the main thread and back per layer.
 *
 * One lane file per direction (writer -> reader), two slots used by exchange parity:
 *
 *   +------------------------------+------------------------------+
 *   | slot 0 (LANE_SLOT_BYTES)     | slot 1 (LANE_SLOT_BYTES)     |   exchange `seq` uses slot seq & 1
 *   +------------------------------+------------------------------+
 *   slot: | seq u32 | check u32 | bytes u32 | 0 u32 | out [rows, Hq, D] f32 | lse [Hq, rows] f32 |
 *
 * The writer writes everything after `seq` first, then `seq`, then one byte on the peer's bell (a FIFO); the reader
 * reads `seq` with pread, sleeps in a blocking read of its bell until it matches, then reads the rest (each side's
 * syscalls are ordered, and tmpfs pages are shared memory). Every exchange takes exactly its byte off the bell, so
 * bytes never pile up; a byte the transport rings to wake a failed lane's reader is never counted, since a failed
 * lane takes no more exchanges. Two slots suffice: a writer starts exchange seq + 2 only after it received the
 * peer's seq + 1, which the peer wrote after it had read our seq. `check` (a hash of the exchange's tag) catches
 * two ranks running different exchanges under one number, which would otherwise merge the wrong partials silently.
 */
export const LANE_SLOT_BYTES = 16 * 2 ** 20;
const HEADER_BYTES = 16;

/** The exchange step's arguments. */
export interface LaneExchange {
  readonly rank: number;
  /** Per rank of the exchange, in rank order; null at this rank. */
  readonly lanes: readonly (LaneEnds | null)[];
  /** The same on every rank for one exchange: a hash of its tag (laneCheck). */
  readonly check: number;
  /** The rows of out / lse whose partials are exchanged (the rows whose cache is sharded over these ranks). */
  readonly rows: readonly number[];
}

/** Largest payload bytes of one exchange; a decode step with more rows exchanges on the main thread instead. */
export const laneFits = (rows: number, heads: number, dim: number): boolean => HEADER_BYTES + 4 * rows * heads * (dim + 1) <= LANE_SLOT_BYTES;

/** FNV-1a of `tag`: the exchange's check word. */
export function laneCheck(tag: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < tag.length; i++) hash = Math.imul(hash ^ tag.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** The byte a bell carries (its value means nothing). */
const BELL = new Uint8Array(1);

/** Buffers reused by every exchange of the thread: [header | payload] to send, to receive, and the accumulator. */
let sendBuffer = new ArrayBuffer(0);
let recvBuffer = new ArrayBuffer(0);
let accBuffer = new ArrayBuffer(0);

/**
 * Runs one exchange over `out` [B, Hq, D] and `lse` [Hq, B] (the attention step's outputs), replacing the
 * exchanged rows of both with the merged partial. Throws the failure of a lane the transport failed (peer lost,
 * closed, timed out, aborted: transport decode-lane.ts), ERR_INTERNAL when the peer is in a different exchange.
 */
export function exchangePartials(spec: LaneExchange, out: Float32Array, lse: Float32Array, heads: number, dim: number): void {
  const n = spec.rows.length;
  const rowSize = heads * dim;
  const floats = n * rowSize + heads * n;
  const bytes = 4 * floats;
  if (HEADER_BYTES + bytes > LANE_SLOT_BYTES) throw new SeqparError('ERR_INTERNAL', `a decode exchange of ${bytes} bytes does not fit a lane slot`);
  if (sendBuffer.byteLength < HEADER_BYTES + bytes)
    [sendBuffer, recvBuffer, accBuffer] = [new ArrayBuffer(HEADER_BYTES + bytes), new ArrayBuffer(HEADER_BYTES + bytes), new ArrayBuffer(bytes)];
  const send = new Uint8Array(sendBuffer, 0, HEADER_BYTES + bytes);
  const sendWords = new Uint32Array(sendBuffer, 0, 4);
  const local = partialOf(new Float32Array(sendBuffer, HEADER_BYTES, floats), n, heads, dim);
  gatherPartialRows(out, lse, spec.rows, local);
  sendWords.set([0, spec.check, bytes, 0]);
  for (const lane of spec.lanes) {
    if (!lane) continue;
    const at = slotOffset(lane.seq);
    writeSync(lane.sendFd, send, 4, send.length - 4, at + 4);
    sendWords[0] = lane.seq;
    writeSync(lane.sendFd, send, 0, 4, at);
    writeSync(lane.sendBell, BELL);
  }
  const acc = partialOf(new Float32Array(accBuffer, 0, floats), n, heads, dim);
  acc.out.data.fill(0);
  acc.lse.data.fill(MASKED_SCORE);
  const received = partialOf(new Float32Array(recvBuffer, HEADER_BYTES, floats), n, heads, dim);
  spec.lanes.forEach((lane, peer) => {
    if (lane) receive(lane, peer, spec.check, bytes);
    mergeInto(acc, lane ? received : local);
  });
  scatterPartialRows(acc, spec.rows, out, lse);
}

/** Waits for `peer`'s partial of exchange `lane.seq` (and its byte on the bell) and reads it into the receive buffer. */
function receive(lane: LaneEnds, peer: number, check: number, bytes: number): void {
  const at = slotOffset(lane.seq);
  const header = new Uint8Array(recvBuffer, 0, HEADER_BYTES);
  const words = new Uint32Array(recvBuffer, 0, 4);
  // A read past the end of a file not yet written that far returns 0 bytes and leaves the buffer as it was.
  const written = () => readSync(lane.recvFd, header, 0, 4, at) === 4 && words[0] === lane.seq;
  // No polling before the bell: between two compute threads on this 2-core host an exchange took 41-57 µs without,
  // 90-101 µs polling up to 50 µs and 237 µs up to 200 µs (a polling thread holds the core its peer needs).
  let rung = false;
  while (!written()) {
    throwIfFailed(lane, peer);
    rung = readSync(lane.recvBell, BELL, 0, 1, null) === 1;
  }
  if (!rung) readSync(lane.recvBell, BELL, 0, 1, null); // this exchange's byte, rung just after seq was written
  throwIfFailed(lane, peer);
  readSync(lane.recvFd, new Uint8Array(recvBuffer, 4, HEADER_BYTES - 4 + bytes), 0, HEADER_BYTES - 4 + bytes, at + 4);
  if (words[1] !== check) throw new SeqparError('ERR_INTERNAL', `rank ${peer} is in a different decode exchange than this rank`);
  if (words[2] !== bytes) throw new SeqparError('ERR_BAD_FRAME', `rank ${peer} sent a decode partial of ${words[2]} bytes, not ${bytes}`);
}

function throwIfFailed(lane: LaneEnds, peer: number): void {
  const state = Atomics.load(lane.state, 0);
  if (state === LANE_OPEN) return;
  const code = LANE_FAILURES[state - 1]!;
  throw new SeqparError(code, `decode exchange with rank ${peer}: ${FAILURE_REASONS[code]}`);
}

const FAILURE_REASONS: Record<LaneFailure, string> = {
  ERR_PEER_LOST: 'the rank was lost',
  ERR_CLOSED: 'the transport closed',
  ERR_TIMEOUT: 'no partial came within the request timeout',
  ERR_ABORTED: 'the request was aborted',
};

const slotOffset = (seq: number): number => (seq & 1) * LANE_SLOT_BYTES;

/** out [rows, heads, dim] then lse [heads, rows] over `data`. */
function partialOf(data: Float32Array, rows: number, heads: number, dim: number): PartialAttention {
  const outSize = rows * heads * dim;
  return {
    out: { data: data.subarray(0, outSize), shape: [rows, heads, dim] },
    lse: { data: data.subarray(outSize, outSize + heads * rows), shape: [heads, rows] },
  };
}
