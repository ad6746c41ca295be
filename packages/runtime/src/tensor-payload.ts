import { SeqparError, type Span, type Tensor } from '@seqpar/core';
import type { FrameHeader, RecvOptions, Transport } from '@seqpar/transport';

/** Tensors travelling in one frame: their shapes in the header, their float32 values back to back in the payload. */
export interface PackedTensors {
  readonly shapes: number[][];
  readonly payload: Float32Array;
}

export function packTensors(tensors: readonly Tensor[]): PackedTensors {
  const total = tensors.reduce((sum, t) => sum + t.data.length, 0);
  const payload = new Float32Array(total);
  let offset = 0;
  for (const t of tensors) {
    payload.set(t.data, offset);
    offset += t.data.length;
  }
  return { shapes: tensors.map((t) => [...t.shape]), payload };
}

/** Copies the tensors out of a received payload (so a transport buffer or shm slot can be let go at once). */
export function unpackTensors(shapes: unknown, payload: Uint8Array): Tensor[] {
  const { tensors, bytes } = allocateTensors(shapes);
  if (payload.byteLength !== bytes.byteLength) {
    throw new SeqparError('ERR_BAD_FRAME', `payload holds ${payload.byteLength} bytes, shapes need ${bytes.byteLength}`);
  }
  bytes.set(payload);
  return tensors;
}

/**
 * Largest chunk a tensor travels in: the shm transport's default slot (16 MiB). A bigger payload would go
 * inline over its socket, which for a 48 MiB call costs ~100 ms more than three slot copies.
 */
export const TENSOR_CHUNK_BYTES = 16 * 2 ** 20;

/**
 * A tensor's bytes as segments in row order, not necessarily one block of memory: a rank's share of a request's
 * tensor is one segment per run of its rows in the request (rowSegments), so it ships without a sharded copy and
 * its out rows land straight in the gathered result.
 */
export interface TensorSegments {
  readonly shape: readonly number[];
  readonly segments: readonly Uint8Array[];
}

/** Rows `runs` of `t` (in that order) as one tensor's segments; no copy. */
export function rowSegments(t: Tensor, runs: readonly Span[]): TensorSegments {
  const rowBytes = (t.data.byteLength / Math.max(1, t.shape[0]!)) | 0;
  const bytes = bytesOf(t.data);
  const rows = runs.reduce((sum, run) => sum + run.end - run.start, 0);
  return { shape: [rows, ...t.shape.slice(1)], segments: runs.map((run) => bytes.subarray(run.start * rowBytes, run.end * rowBytes)) };
}

/**
 * Sends `header` (plus `shapes` and the chunk count) on `tag`, then every tensor's bytes straight from the
 * tensor (no packing copy) in chunks of at most TENSOR_CHUNK_BYTES on `dataTag`, each stamped with `id` so a
 * chunk of another request is caught. A chunk that spans several segments (striped rows) is gathered into a
 * reused staging buffer first. Sequential, so the chunks arrive in order.
 */
export async function sendTensors(world: Transport, to: number, tag: string, dataTag: string, header: FrameHeader & { id: number }, tensors: readonly (Tensor | TensorSegments)[]): Promise<void> {
  const parts = tensors.map(segmentsOf);
  const chunks = parts.flatMap((segments) => chunksOf(segments));
  await world.send(to, tag, { ...header, shapes: tensors.map((t) => [...t.shape]), chunks: chunks.length });
  let staging: Uint8Array | undefined;
  try {
    for (const pieces of chunks) {
      let chunk = pieces[0]!;
      if (pieces.length > 1) {
        staging ??= takeStaging();
        let offset = 0;
        for (const piece of pieces) (staging.set(piece, offset), (offset += piece.byteLength));
        chunk = staging.subarray(0, offset);
      }
      await world.send(to, dataTag, { id: header.id }, chunk);
    }
  } finally {
    if (staging) stagingPool.push(staging);
  }
}

/**
 * Receives the chunks `sendTensors` announced in `header` and copies them into fresh tensors (each slot let go at
 * once), or, for index i where `into[i]` is given, into its segments (whose shape must match); such entries come
 * back undefined.
 */
export function receiveTensors(world: Transport, from: number, dataTag: string, header: { id: number; shapes: unknown; chunks?: unknown }, options: RecvOptions): Promise<Tensor[]>;
export function receiveTensors(
  world: Transport,
  from: number,
  dataTag: string,
  header: { id: number; shapes: unknown; chunks?: unknown },
  options: RecvOptions,
  into: readonly (TensorSegments | undefined)[],
): Promise<(Tensor | undefined)[]>;
export async function receiveTensors(
  world: Transport,
  from: number,
  dataTag: string,
  header: { id: number; shapes: unknown; chunks?: unknown },
  options: RecvOptions,
  into: readonly (TensorSegments | undefined)[] = [],
): Promise<(Tensor | undefined)[]> {
  const shapes = checkShapes(header.shapes);
  const tensors: (Tensor | undefined)[] = [];
  const targets: Uint8Array[] = [];
  shapes.forEach((shape, i) => {
    const target = into[i];
    if (target) {
      if (target.shape.length !== shape.length || target.shape.some((d, axis) => d !== shape[axis])) {
        throw new SeqparError('ERR_BAD_FRAME', `tensor ${i} has shape [${shape.join(', ')}], expected [${target.shape.join(', ')}]`);
      }
      tensors.push(undefined);
      targets.push(...target.segments);
    } else {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      tensors.push({ data, shape });
      targets.push(bytesOf(data));
    }
  });
  const expected = targets.reduce((sum, target) => sum + target.byteLength, 0);
  const chunks = header.chunks;
  if (!Number.isInteger(chunks) || (chunks as number) < 0) throw new SeqparError('ERR_BAD_FRAME', 'frame lacks a valid chunk count');
  const writer = new SegmentWriter(targets);
  for (let i = 0; i < (chunks as number); i++) {
    const frame = await world.recv(from, dataTag, options);
    try {
      if (frame.header.id !== header.id) throw new SeqparError('ERR_BAD_FRAME', `chunk of request ${String(frame.header.id)} arrived for request ${header.id}`);
      if (writer.written + frame.payload.byteLength > expected) throw new SeqparError('ERR_BAD_FRAME', `chunks exceed the ${expected} bytes their shapes need`);
      writer.write(frame.payload);
    } finally {
      frame.release?.();
    }
  }
  if (writer.written !== expected) throw new SeqparError('ERR_BAD_FRAME', `chunks hold ${writer.written} bytes, shapes need ${expected}`);
  return tensors;
}

/** Copies a stream of chunks across a list of target segments in order. */
class SegmentWriter {
  written = 0;
  private index = 0;
  private offset = 0;

  constructor(private readonly targets: readonly Uint8Array[]) {}

  write(bytes: Uint8Array): void {
    let from = 0;
    while (from < bytes.byteLength) {
      const target = this.targets[this.index]!;
      const n = Math.min(target.byteLength - this.offset, bytes.byteLength - from);
      target.set(bytes.subarray(from, from + n), this.offset);
      from += n;
      this.offset += n;
      if (this.offset === target.byteLength) (this.index++, (this.offset = 0));
    }
    this.written += bytes.byteLength;
  }
}

/** Staging buffers for gathered chunks, kept for the next request (fresh pages cost ~0.4 ms per MiB). */
const stagingPool: Uint8Array[] = [];

function takeStaging(): Uint8Array {
  return stagingPool.pop() ?? new Uint8Array(TENSOR_CHUNK_BYTES);
}

function segmentsOf(t: Tensor | TensorSegments): readonly Uint8Array[] {
  return 'segments' in t ? t.segments : [bytesOf(t.data)];
}

/** Segments cut into chunks of at most TENSOR_CHUNK_BYTES, each chunk the list of pieces it is made of. */
function chunksOf(segments: readonly Uint8Array[]): Uint8Array[][] {
  const chunks: Uint8Array[][] = [];
  let chunk: Uint8Array[] = [];
  let room = TENSOR_CHUNK_BYTES;
  for (const segment of segments) {
    for (let offset = 0; offset < segment.byteLength; ) {
      const n = Math.min(room, segment.byteLength - offset);
      chunk.push(segment.subarray(offset, offset + n));
      offset += n;
      room -= n;
      if (room === 0) (chunks.push(chunk), (chunk = []), (room = TENSOR_CHUNK_BYTES));
    }
  }
  if (chunk.length) chunks.push(chunk);
  return chunks;
}

function checkShapes(shapes: unknown): number[][] {
  if (!Array.isArray(shapes) || !shapes.every((s) => Array.isArray(s) && s.every((d) => Number.isInteger(d) && d >= 0))) {
    throw new SeqparError('ERR_BAD_FRAME', 'frame lacks a valid tensor shape list');
  }
  return shapes as number[][];
}

/** Tensors of `shapes` as views of one zeroed buffer, plus that buffer's bytes to fill. */
function allocateTensors(shapes: unknown): { tensors: Tensor[]; bytes: Uint8Array } {
  const checked = checkShapes(shapes);
  const sizes = checked.map((shape) => shape.reduce((a, b) => a * b, 1));
  const values = new Float32Array(sizes.reduce((a, b) => a + b, 0));
  let offset = 0;
  const tensors = checked.map((shape, i) => {
    const data = values.subarray(offset, offset + sizes[i]!);
    offset += sizes[i]!;
    return { data, shape };
  });
  return { tensors, bytes: bytesOf(values) };
}

export function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
