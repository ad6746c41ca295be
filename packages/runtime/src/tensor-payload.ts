import { SeqparError, type Tensor } from '@seqpar/core';

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
  if (!Array.isArray(shapes) || !shapes.every((s) => Array.isArray(s) && s.every((d) => Number.isInteger(d) && d >= 0))) {
    throw new SeqparError('ERR_BAD_FRAME', 'frame lacks a valid tensor shape list');
  }
  const sizes = (shapes as number[][]).map((shape) => shape.reduce((a, b) => a * b, 1));
  const total = sizes.reduce((a, b) => a + b, 0);
  if (payload.byteLength !== total * 4) {
    throw new SeqparError('ERR_BAD_FRAME', `payload holds ${payload.byteLength} bytes, shapes need ${total * 4}`);
  }
  const values = new Float32Array(total);
  new Uint8Array(values.buffer).set(payload);
  let offset = 0;
  return (shapes as number[][]).map((shape, i) => {
    const data = values.subarray(offset, offset + sizes[i]!);
    offset += sizes[i]!;
    return { data, shape };
  });
}

export function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
