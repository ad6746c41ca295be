import { readSync, writeSync } from 'node:fs';
import { createPartial, gatherPartialRows, LANE_FAILURES, LANE_OPEN, mergeInto, SeqparError, type LaneEnds, type LaneFailure, type PartialAttention } from '@seqpar/core';

/**
 * The decode exchanges of pass-Q decode as compute-thread chain steps, through the decode lanes between ranks
 * (transport decode-lane.ts). Each row of a decode batch has an owner: the rank that keeps its new K/V, runs its
 * token-local layers and samples its token. Per layer, two exchanges:
 *
 *   queries:   every rank sends the queries of the sharded rows it owns to every other rank, and assembles q for
 *              all rows of the batch (its own rows' from its pre-attention graph, the others' from their owners);
 *   partials:  after attending over its own cache share, every rank sends each owner the partial (out, lse) of the
 *              owner's rows; an owner merges its rows' partials in rank order, so the result does not depend on
 *              which rank the partial came from first.
 *
 * So the token-local layers run once per row, on its owner, and a rank owning no row of a step only attends.
 *
 * One lane file per direction (writer -> reader), two slots used by exchange parity:
 *
 *   +------------------------------+------------------------------+
 *   | slot 0 (LANE_SLOT_BYTES)     | slot 1 (LANE_SLOT_BYTES)     |   exchange `seq` uses slot seq & 1
 *   +------------------------------+------------------------------+
 *   slot: | seq u32 | check u32 | bytes u32 | 0 u32 | payload (f32) |
 *
 * Every exchange writes one message to every peer and reads one from every peer, even an empty one, so both ends
 * of a lane count their exchanges alike. The writer writes everything after `seq` first, then `seq`, then one byte
 * on the peer's bell (a FIFO); the reader reads `seq` with pread, sleeps in a blocking read of its bell until it
 * matches, then reads the rest (each side's syscalls are ordered, and tmpfs pages are shared memory). Every
 * exchange takes exactly its byte off the bell, so bytes never pile up; a byte the transport rings to wake a failed
 * lane's reader is never counted, since a failed lane takes no more exchanges. Two slots suffice: a writer starts
 * exchange seq + 2 only after it received the peer's seq + 1, which the peer wrote after it had read our seq.
 * `check` (a hash of the exchange's tag) catches two ranks running different exchanges under one number, which
 * would otherwise use the wrong rows silently.
 */
export const LANE_SLOT_BYTES = 16 * 2 ** 20;
const HEADER_BYTES = 16;

/** A row this rank alone holds (a session not sharded over the exchange's ranks): nothing about it travels. */
export const LOCAL_ROW = -1;

/** An exchange step's arguments. */
export interface LaneExchange {
  readonly kind: 'queries' | 'partials';
  readonly rank: number;
  /** Per rank of the exchange, in rank order; null at this rank. */
  readonly lanes: readonly (LaneEnds | null)[];
  /** The same on every rank for one exchange: a hash of its tag (laneCheck). */
  readonly check: number;
  /** Per row of the batch: its owner rank, or LOCAL_ROW. Rows this rank runs token-local layers for: owner = rank or LOCAL_ROW. */
  readonly owners: readonly number[];
  /** Query heads and head size of the batch's attention. */
  readonly heads: number;
  readonly dim: number;
}

/** A tensor an exchange produces into the chain: a fresh array (the chain's outputs are transferred at its end). */
export interface ExchangeOutput {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

/** Largest message of one exchange for `rows` sharded rows; a decode step with more rows exchanges on the main thread instead. */
export const laneFits = (rows: number, heads: number, dim: number): boolean => HEADER_BYTES + 4 * rows * heads * (dim + 1) <= LANE_SLOT_BYTES;

/** FNV-1a of `tag`: the exchange's check word. */
export function laneCheck(tag: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < tag.length; i++) hash = Math.imul(hash ^ tag.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/**
 * Runs exchange `spec` on the chain's latest outputs (`latest(name)`): queries reads this rank's q [local rows, Hq,
 * D] (none where it runs no row) and produces q [B, Hq, D]; partials reads out [B, Hq, D] and lse [Hq, B] and
 * produces attn [local rows, Hq, D], the whole attention of the rows this rank runs token-local layers for. Throws
 * the failure of a lane the transport failed (peer lost, closed, timed out, aborted: transport decode-lane.ts),
 * ERR_INTERNAL when a peer is in a different exchange.
 */
export function runLaneExchange(spec: LaneExchange, latest: (name: string) => Float32Array | undefined): Record<string, ExchangeOutput> {
  if (spec.kind === 'queries') return { q: exchangeQueries(spec, latest('q') ?? new Float32Array(0)) };
  const [out, lse] = [latest('out'), latest('lse')];
  if (!out || !lse) throw new SeqparError('ERR_INTERNAL', 'a partials exchange needs an earlier attention step');
  return { attn: exchangePartials(spec, out, lse) };
}

/** Rows of the batch whose owner is `owner`, in row order. */
const rowsOwnedBy = (owners: readonly number[], owner: number): number[] => owners.flatMap((o, i) => (o === owner ? [i] : []));

/** Rows this rank runs token-local layers for (it owns them, or holds them alone), in row order. */
const localRows = ({ owners, rank }: LaneExchange): number[] => owners.flatMap((o, i) => (o === rank || o === LOCAL_ROW ? [i] : []));

function exchangeQueries(spec: LaneExchange, localQ: Float32Array): ExchangeOutput {
  const { owners, heads, dim, rank } = spec;
  const rowSize = heads * dim;
  const q = new Float32Array(owners.length * rowSize);
  const local = localRows(spec);
  local.forEach((i, j) => q.set(localQ.subarray(j * rowSize, (j + 1) * rowSize), i * rowSize));
  const mine = rowsOwnedBy(owners, rank);
  exchange(
    spec,
    (_peer, into) => mine.forEach((i, j) => into.set(q.subarray(i * rowSize, (i + 1) * rowSize), j * rowSize)),
    () => mine.length * rowSize,
    (peer) => rowsOwnedBy(owners, peer).length * rowSize,
    (peer, received) => rowsOwnedBy(owners, peer).forEach((i, j) => q.set(received.subarray(j * rowSize, (j + 1) * rowSize), i * rowSize)),
  );
  return { data: q, dims: [owners.length, heads, dim] };
}

function exchangePartials(spec: LaneExchange, out: Float32Array, lse: Float32Array): ExchangeOutput {
  const { owners, heads, dim, rank } = spec;
  const rowSize = heads * dim;
  const mine = rowsOwnedBy(owners, rank);
  const floats = (rows: number) => rows * (rowSize + heads);
  const rowsOf = (owner: number) => rowsOwnedBy(owners, owner);
  // Every rank's partial of this rank's rows, by rank (this rank's own from its outputs), merged in rank order.
  const partials: PartialAttention[] = new Array(spec.lanes.length);
  partials[rank] = createPartial(mine.length, heads, dim);
  gatherPartialRows(out, lse, mine, partials[rank]);
  exchange(
    spec,
    (peer, into) => gatherPartialRows(out, lse, rowsOf(peer), partialOf(into, rowsOf(peer).length, heads, dim)),
    (peer) => floats(rowsOf(peer).length),
    () => floats(mine.length),
    (peer, received) => (partials[peer] = partialOf(received.slice(), mine.length, heads, dim)),
  );
  const merged = createPartial(mine.length, heads, dim);
  for (const partial of partials) mergeInto(merged, partial);
  // attn for the local rows: a row held alone keeps this rank's out as it is.
  const local = localRows(spec);
  const attn = new Float32Array(local.length * rowSize);
  local.forEach((i, j) => {
    const k = mine.indexOf(i);
    attn.set(k < 0 ? out.subarray(i * rowSize, (i + 1) * rowSize) : merged.out.data.subarray(k * rowSize, (k + 1) * rowSize), j * rowSize);
  });
  return { data: attn, dims: [local.length, heads, dim] };
}

/** Buffers reused by every exchange of the thread: [header | payload] to send, and to receive. */
let sendBuffer = new ArrayBuffer(0);
let recvBuffer = new ArrayBuffer(0);

/**
 * One exchange among the lanes' ranks: writes `write(peer, into)` (`floatsTo(peer)` floats) to every peer, then
 * reads every peer's message (`floatsFrom(peer)` floats) in rank order and hands it to `take` (the array is reused
 * by the next read).
 */
function exchange(
  spec: LaneExchange,
  write: (peer: number, into: Float32Array) => void,
  floatsTo: (peer: number) => number,
  floatsFrom: (peer: number) => number,
  take: (peer: number, received: Float32Array) => void,
): void {
  const peers = spec.lanes.flatMap((lane, peer) => (lane ? [{ lane, peer }] : []));
  const largest = Math.max(0, ...peers.flatMap(({ peer }) => [floatsTo(peer), floatsFrom(peer)]));
  if (HEADER_BYTES + 4 * largest > LANE_SLOT_BYTES) throw new SeqparError('ERR_INTERNAL', `a decode exchange of ${4 * largest} bytes does not fit a lane slot`);
  if (sendBuffer.byteLength < HEADER_BYTES + 4 * largest) [sendBuffer, recvBuffer] = [new ArrayBuffer(HEADER_BYTES + 4 * largest), new ArrayBuffer(HEADER_BYTES + 4 * largest)];
  for (const { lane, peer } of peers) {
    const bytes = 4 * floatsTo(peer);
    const send = new Uint8Array(sendBuffer, 0, HEADER_BYTES + bytes);
    const words = new Uint32Array(sendBuffer, 0, 4);
    write(peer, new Float32Array(sendBuffer, HEADER_BYTES, bytes / 4));
    words.set([0, spec.check, bytes, 0]);
    const at = slotOffset(lane.seq);
    writeSync(lane.sendFd, send, 4, send.length - 4, at + 4);
    words[0] = lane.seq;
    writeSync(lane.sendFd, send, 0, 4, at);
    writeSync(lane.sendBell, BELL);
  }
  for (const { lane, peer } of peers) {
    const bytes = 4 * floatsFrom(peer);
    receive(lane, peer, spec.check, bytes);
    take(peer, new Float32Array(recvBuffer, HEADER_BYTES, bytes / 4));
  }
}

/** The byte a bell carries (its value means nothing). */
const BELL = new Uint8Array(1);

/** Waits for `peer`'s message of exchange `lane.seq` (and its byte on the bell) and reads it into the receive buffer. */
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
  if (words[2] !== bytes) throw new SeqparError('ERR_BAD_FRAME', `rank ${peer} sent a decode message of ${words[2]} bytes, not ${bytes}`);
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
  ERR_TIMEOUT: 'no message came within the request timeout',
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
