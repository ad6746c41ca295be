import { SeqparError, type Tensor } from '@seqpar/core';
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
 * Sends `header` (plus `shapes` and the chunk count) on `tag`, then every tensor's bytes straight from the
 * tensor (no packing copy) in chunks of at most TENSOR_CHUNK_BYTES on `dataTag`, each stamped with `id` so a
 * chunk of another request is caught. Sequential, so the chunks arrive in order.
 */
export async function sendTensors(world: Transport, to: number, tag: string, dataTag: string, header: FrameHeader & { id: number }, tensors: readonly Tensor[]): Promise<void> {
  const chunks = tensors.flatMap((t) => chunksOf(bytesOf(t.data)));
  await world.send(to, tag, { ...header, shapes: tensors.map((t) => [...t.shape]), chunks: chunks.length });
  for (const chunk of chunks) await world.send(to, dataTag, { id: header.id }, chunk);
}

/** Receives the chunks `sendTensors` announced in `header` and copies them into fresh tensors (each slot let go at once). */
export async function receiveTensors(world: Transport, from: number, dataTag: string, header: { id: number; shapes: unknown; chunks?: unknown }, options: RecvOptions): Promise<Tensor[]> {
  const { tensors, bytes } = allocateTensors(header.shapes);
  const chunks = header.chunks;
  if (!Number.isInteger(chunks) || (chunks as number) < 0) throw new SeqparError('ERR_BAD_FRAME', 'frame lacks a valid chunk count');
  let offset = 0;
  for (let i = 0; i < (chunks as number); i++) {
    const frame = await world.recv(from, dataTag, options);
    try {
      if (frame.header.id !== header.id) throw new SeqparError('ERR_BAD_FRAME', `chunk of request ${String(frame.header.id)} arrived for request ${header.id}`);
      if (offset + frame.payload.byteLength > bytes.byteLength) throw new SeqparError('ERR_BAD_FRAME', `chunks exceed the ${bytes.byteLength} bytes their shapes need`);
      bytes.set(frame.payload, offset);
      offset += frame.payload.byteLength;
    } finally {
      frame.release?.();
    }
  }
  if (offset !== bytes.byteLength) throw new SeqparError('ERR_BAD_FRAME', `chunks hold ${offset} bytes, shapes need ${bytes.byteLength}`);
  return tensors;
}

function chunksOf(bytes: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < bytes.byteLength; offset += TENSOR_CHUNK_BYTES) chunks.push(bytes.subarray(offset, offset + TENSOR_CHUNK_BYTES));
  return chunks;
}

/** Tensors of `shapes` as views of one zeroed buffer, plus that buffer's bytes to fill. */
function allocateTensors(shapes: unknown): { tensors: Tensor[]; bytes: Uint8Array } {
  if (!Array.isArray(shapes) || !shapes.every((s) => Array.isArray(s) && s.every((d) => Number.isInteger(d) && d >= 0))) {
    throw new SeqparError('ERR_BAD_FRAME', 'frame lacks a valid tensor shape list');
  }
  const sizes = (shapes as number[][]).map((shape) => shape.reduce((a, b) => a * b, 1));
  const values = new Float32Array(sizes.reduce((a, b) => a + b, 0));
  let offset = 0;
  const tensors = (shapes as number[][]).map((shape, i) => {
    const data = values.subarray(offset, offset + sizes[i]!);
    offset += sizes[i]!;
    return { data, shape };
  });
  return { tensors, bytes: bytesOf(values) };
}

export function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
