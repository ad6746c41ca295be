import { setImmediate } from 'node:timers/promises';
import { bytesOf, SeqparError, type Span, type Tensor } from '@seqpar/core';
import { SHM_DEFAULT_SLOT_BYTES, type Frame, type FrameHeader, type RecvOptions, type Transport } from '@seqpar/transport';

/**
 * Largest chunk a tensor travels in: the shm transport's default slot. A bigger payload would go inline over its
 * socket, which for a 48 MiB call costs ~100 ms more than three slot copies.
 */
export const TENSOR_CHUNK_BYTES = SHM_DEFAULT_SLOT_BYTES;

/**
 * A tensor whose bytes are byte ranges of `bytes`, in row order, not necessarily one block of memory: a rank's
 * share of a request's tensor is one range per run of its rows in the request (rowSegments), so it ships without a
 * sharded copy and its out rows land straight in the gathered result. Ranges are offsets, copied with
 * Buffer.copy: a typed-array view per striped row cost ~50 ms per 16k-token request.
 */
export interface TensorSegments {
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
  readonly ranges: readonly Span[];
}

/** Rows `runs` of `t` (in that order) as one tensor's segments; no copy. */
export function rowSegments(t: Tensor, runs: readonly Span[]): TensorSegments {
  const rowBytes = (t.data.byteLength / Math.max(1, t.shape[0]!)) | 0;
  const rows = runs.reduce((sum, run) => sum + run.end - run.start, 0);
  return { shape: [rows, ...t.shape.slice(1)], bytes: bytesOf(t.data), ranges: runs.map((run) => ({ start: run.start * rowBytes, end: run.end * rowBytes })) };
}

/**
 * Sends `header` (plus `shapes` and the chunk count) on `tag`, then every tensor's bytes straight from the
 * tensor (no packing copy) in chunks of at most TENSOR_CHUNK_BYTES on `dataTag`, each stamped with `id` so a
 * chunk of another request is caught. A chunk that spans several ranges (striped rows) is gathered into a
 * reused staging buffer first. Sequential, so the chunks arrive in order.
 */
export async function sendTensors(
  world: Transport,
  to: number,
  tag: string,
  dataTag: string,
  header: FrameHeader & { id: number },
  tensors: readonly (Tensor | TensorSegments)[],
): Promise<void> {
  const perTensor = tensors.map((t) => chunksOf(segmentsOf(t)));
  const chunks = perTensor.flat();
  const tensorChunks = perTensor.map((c) => c.length);
  await world.send(to, tag, { ...header, shapes: tensors.map((t) => [...t.shape]), chunks: chunks.length, tensorChunks });
  let staging: Buffer | undefined;
  try {
    for (const { source, ranges } of chunks) {
      let chunk: Uint8Array;
      if (ranges.length === 1) chunk = source.subarray(ranges[0]!.start, ranges[0]!.end);
      else {
        staging ??= takeStaging();
        let offset = 0;
        for (const { start, end } of ranges) offset += source.copy(staging, offset, start, end);
        chunk = staging.subarray(0, offset);
      }
      await world.send(to, dataTag, { id: header.id }, chunk);
    }
  } finally {
    if (staging) stagingPool.push(staging);
  }
}

/** Longest a receive copies chunks before it lets the event loop turn. */
const TURN_EVERY_MS = 20;

/** Where received tensors go: `into[i]` for index i where given (its ranges), else one buffer for the rest. */
export interface ReceiveTargets {
  readonly into?: readonly (TensorSegments | undefined)[];
  /** Gives the buffer of the fresh tensors (else a new one): a callee's pool of the last call's inputs. */
  readonly spare?: SpareBuffer;
  /**
   * When given, a fresh tensor at one of `indices` that the sender put in one chunk (at most TENSOR_CHUNK_BYTES,
   * one run of rows) is a view of that chunk's payload, not a copy: its frame (an shm slot, lent without a copy)
   * is pushed to `frames`, and the caller releases it once nothing reads the tensor. Such tensors are not back to
   * back with the others.
   */
  readonly lend?: { readonly frames: Frame[]; readonly indices: readonly number[] };
}

/** What `receiveTensors` answers: with `into` targets, undefined at their indices. */
export type ReceivedTensors<T extends ReceiveTargets> = T extends { into: readonly unknown[] } ? (Tensor | undefined)[] : Tensor[];

/**
 * Receives the chunks `sendTensors` announced in `header` and copies them into fresh tensors (each slot let go at
 * once), or, for index i where `receiveTargets.into[i]` is given, into its ranges (its shape must match); such entries
 * come back undefined. With `lend`, tensors of one chunk keep their chunk's frame instead.
 */
export async function receiveTensors<T extends ReceiveTargets = Record<never, never>>(
  world: Transport,
  from: number,
  dataTag: string,
  header: { id: number; shapes: unknown; chunks?: unknown; tensorChunks?: unknown },
  options: RecvOptions,
  receiveTargets?: T,
): Promise<ReceivedTensors<T>> {
  const { into = [], spare, lend }: ReceiveTargets = receiveTargets ?? {};
  const shapes = checkShapes(header.shapes);
  const chunks = chunkCount(header);
  const bytes = shapes.map((shape) => 4 * shape.reduce((a, b) => a * b, 1));
  shapes.forEach((shape, i) => {
    const target = into[i];
    if (target && (target.shape.length !== shape.length || target.shape.some((d, axis) => d !== shape[axis]))) {
      throw new SeqparError('ERR_BAD_FRAME', `tensor ${i} has shape [${shape.join(', ')}], expected [${target.shape.join(', ')}]`);
    }
  });
  // Only a tensor the sender put in one chunk (tensorChunks) can be a view of it; runs of rows sent as chunks of
  // their own are copied together.
  const oneChunk = (i: number): boolean => Array.isArray(header.tensorChunks) && header.tensorChunks[i] === 1;
  const lent = shapes.map((_, i) => lend?.indices.includes(i) === true && !into[i] && bytes[i]! > 0 && oneChunk(i));
  // The fresh ones share one buffer, back to back: a worker's k and v then already are a KV frame (packKv).
  const fresh = allocateTensors(
    shapes.filter((_, i) => !into[i] && !lent[i]),
    spare,
  );
  let received = 0;
  let turnedAt = performance.now();
  const next = async (): Promise<Frame> => {
    // Chunks already queued resolve without the event loop turning, and copying a big call's chunks into fresh
    // pages took 0.65 s on a loaded host: long enough to leave pings unanswered, so the loop turns between them.
    if (performance.now() - turnedAt > TURN_EVERY_MS) {
      await setImmediate();
      turnedAt = performance.now();
    }
    if (received++ === chunks) throw new SeqparError('ERR_BAD_FRAME', `${chunks} chunks hold fewer bytes than the shapes need`);
    const frame = await world.recv(from, dataTag, options);
    if (frame.header.id !== header.id) {
      frame[Symbol.dispose]();
      throw new SeqparError('ERR_BAD_FRAME', `chunk of request ${String(frame.header.id)} arrived for request ${header.id}`);
    }
    return frame;
  };
  const tensors: (Tensor | undefined)[] = [];
  for (const [i, shape] of shapes.entries()) {
    if (lent[i]) {
      const frame = await next();
      const payload = frame.payload;
      if (payload.byteLength !== bytes[i]) {
        frame[Symbol.dispose]();
        throw new SeqparError('ERR_BAD_FRAME', `tensor ${i} of ${bytes[i]} bytes arrived as a chunk of ${payload.byteLength}`);
      }
      // A float view needs 4-byte alignment: slots have it, a small payload inline in the shm ring may not (copied).
      if (payload.byteOffset % 4 === 0) {
        lend!.frames.push(frame);
        tensors.push({ data: new Float32Array(payload.buffer, payload.byteOffset, payload.byteLength / 4), shape });
      } else {
        tensors.push({ data: new Float32Array(new Uint8Array(payload).buffer), shape });
        frame[Symbol.dispose]();
      }
      continue;
    }
    const target = into[i];
    const tensor = target ? undefined : fresh.shift()!;
    tensors.push(tensor);
    const writer = new SegmentWriter(segmentsOf(target ?? tensor!));
    while (writer.written < bytes[i]!) {
      using frame = await next();
      if (writer.written + frame.payload.byteLength > bytes[i]!) throw new SeqparError('ERR_BAD_FRAME', `chunks exceed the ${bytes[i]} bytes tensor ${i} needs`);
      writer.write(asBuffer(frame.payload));
    }
  }
  if (received !== chunks) throw new SeqparError('ERR_BAD_FRAME', `${chunks} chunks announced, the shapes need ${received}`);
  return tensors as ReceivedTensors<T>;
}

/** Reads and lets go the chunks `sendTensors` announced in `header`, for a reply nobody waits for any more. */
export async function discardTensors(world: Transport, from: number, dataTag: string, header: { id: number; chunks?: unknown }, options: RecvOptions): Promise<void> {
  for (let i = 0; i < chunkCount(header); i++) {
    using _chunk = await world.recv(from, dataTag, options);
  }
}

function chunkCount(header: { chunks?: unknown }): number {
  const chunks = header.chunks;
  if (!Number.isInteger(chunks) || (chunks as number) < 0) throw new SeqparError('ERR_BAD_FRAME', 'frame lacks a valid chunk count');
  return chunks as number;
}

/** Byte ranges of one buffer (a Buffer, so ranges copy by offset without a view each). */
interface Segments {
  readonly source: Buffer;
  readonly ranges: readonly Span[];
}

/** Copies a stream of chunks across the ranges of one target, in order. */
class SegmentWriter {
  written = 0;
  private range = 0;
  private offset = 0;

  constructor(private readonly target: Segments) {}

  write(bytes: Buffer): void {
    const { source, ranges } = this.target;
    let from = 0;
    while (from < bytes.byteLength) {
      const range = ranges[this.range]!;
      const n = bytes.copy(source, range.start + this.offset, from, Math.min(bytes.byteLength, from + range.end - range.start - this.offset));
      from += n;
      this.offset += n;
      if (range.start + this.offset === range.end) {
        this.range++;
        this.offset = 0;
      }
    }
    this.written += bytes.byteLength;
  }
}

/** Staging buffers for gathered chunks, kept for the next request (fresh pages cost ~0.4 ms per MiB). */
const stagingPool: Buffer[] = [];

function takeStaging(): Buffer {
  return stagingPool.pop() ?? Buffer.allocUnsafeSlow(TENSOR_CHUNK_BYTES);
}

function segmentsOf(t: Tensor | TensorSegments): Segments {
  return 'ranges' in t ? { source: asBuffer(t.bytes), ranges: t.ranges } : { source: asBuffer(bytesOf(t.data)), ranges: [{ start: 0, end: t.data.byteLength }] };
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A range at least this long travels as chunks of its own rather than gathered with its neighbours: a frame costs
 * tens of microseconds, a staging copy of 256 KiB about as much. Zigzag's two runs per rank and documents dealt
 * whole (1k rows of H 8, D 64: 2 MiB each) so go straight from the caller's tensor into the transport; only
 * striped rows (2 KiB each) are gathered.
 */
const DIRECT_RANGE_BYTES = 256 * 1024;

/** Ranges cut into chunks of at most TENSOR_CHUNK_BYTES, each chunk the ranges it is made of. */
function chunksOf({ source, ranges }: Segments): Segments[] {
  const chunks: Segments[] = [];
  let chunk: Span[] = [];
  let room = TENSOR_CHUNK_BYTES;
  const flush = (): void => {
    if (chunk.length) chunks.push({ source, ranges: chunk });
    chunk = [];
    room = TENSOR_CHUNK_BYTES;
  };
  for (const range of ranges) {
    const direct = range.end - range.start >= DIRECT_RANGE_BYTES;
    if (direct) flush();
    for (let start = range.start; start < range.end;) {
      const end = Math.min(range.end, start + room);
      chunk.push({ start, end });
      room -= end - start;
      start = end;
      if (room === 0) flush();
    }
    if (direct) flush();
  }
  flush();
  return chunks;
}

function checkShapes(shapes: unknown): number[][] {
  if (!Array.isArray(shapes) || !shapes.every((s) => Array.isArray(s) && s.every((d) => Number.isInteger(d) && d >= 0))) {
    throw new SeqparError('ERR_BAD_FRAME', 'frame lacks a valid tensor shape list');
  }
  return shapes as number[][];
}

/**
 * The buffer of a callee's last received tensors, kept for its next call of the same size: a fresh buffer costs
 * ~0.5 ms per MiB in page faults on first touch (~45 ms for the q, k, v of a 16k-token request), a reused one
 * nothing. One buffer, not a pool: a call of another size lets the old one go, so memory never exceeds one call's.
 * Only buffers it handed out come back (never a lent frame's memory).
 */
export class SpareBuffer {
  private buffer: ArrayBuffer | undefined;
  private readonly handedOut = new WeakSet<ArrayBufferLike>();

  /** Whether `take(byteLength)` would hand back the kept buffer (whose bytes are the last use's) rather than a new one. */
  holds(byteLength: number): boolean {
    return this.buffer?.byteLength === byteLength;
  }

  take(byteLength: number): ArrayBuffer {
    const buffer = this.holds(byteLength) ? this.buffer! : new ArrayBuffer(byteLength);
    this.buffer = undefined;
    this.handedOut.add(buffer);
    return buffer;
  }

  /** Hands back the buffer behind `tensors` (from `receiveTensors` with this spare) once nothing uses them. */
  give(tensors: readonly Tensor[]): void {
    const buffer = tensors.find((t) => this.handedOut.has(t.data.buffer))?.data.buffer;
    if (buffer instanceof ArrayBuffer) this.buffer = buffer;
  }
}

/** Tensors of `shapes` as views of one buffer (every byte of which the chunks then write). */
function allocateTensors(shapes: readonly number[][], spare?: SpareBuffer): Tensor[] {
  const sizes = shapes.map((shape) => shape.reduce((a, b) => a * b, 1));
  const floats = sizes.reduce((a, b) => a + b, 0);
  if (floats === 0) return shapes.map((shape) => ({ data: new Float32Array(0), shape }));
  const values = new Float32Array(spare ? spare.take(floats * 4) : new ArrayBuffer(floats * 4));
  let offset = 0;
  return shapes.map((shape, i) => {
    const data = values.subarray(offset, offset + sizes[i]!);
    offset += sizes[i]!;
    return { data, shape };
  });
}
