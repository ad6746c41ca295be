import { readFile, writeFile } from 'node:fs/promises';
import { SeqparError, type Tensor } from '@seqpar/core';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './dtype.js';
import { DTYPE_BYTES, readSafetensorsLayout, type TensorSlot, type WeightDtype } from './safetensors-header.js';

/**
 * Parses a safetensors file's bytes into float32 tensors by name; the header is checked first
 * (safetensors-header.ts). A NaN or infinite weight is ERR_MODEL_FORMAT: it would turn every logit NaN and the
 * sampled tokens into a silent stream of zeros. `source` names the file in errors.
 */
export function parseSafetensors(bytes: Uint8Array, source: string): Map<string, Tensor> {
  const { tensors, dataStart } = readSafetensorsLayout(bytes, source);
  const data = bytes.subarray(dataStart);
  return new Map(tensors.map((slot) => [slot.name, { data: decode(data, slot, source), shape: slot.shape }]));
}

/** Exponent bits all ones: infinity or NaN, in each format's bit layout. */
const NON_FINITE: Readonly<Record<WeightDtype, number>> = { F32: 0x7f800000, F16: 0x7c00, BF16: 0x7f80 };

// The finiteness check rides on the loop that touches every value anyway for half precision (BF16, 256 MiB:
// 380 -> 395 ms here); float32 pays one extra pass over the copy (140 -> 300 ms).
function decode(data: Uint8Array, slot: TensorSlot, source: string): Float32Array {
  const { dtype, count, begin, end } = slot;
  const copy = new Uint8Array(data.subarray(begin, end)); // a copy (Buffer#slice would not copy): aligned, independent of the file
  const mask = NON_FINITE[dtype];
  if (dtype === 'F32') {
    const bits = new Uint32Array(copy.buffer, 0, count);
    for (let i = 0; i < count; i++) if ((bits[i]! & mask) === mask) throw nonFinite(source, slot, i, new Float32Array(copy.buffer, 4 * i, 1)[0]!);
    return new Float32Array(copy.buffer, 0, count);
  }
  const halves = new Uint16Array(copy.buffer, 0, count);
  const out = new Float32Array(count);
  const convert = dtype === 'F16' ? f16ToF32 : bf16ToF32;
  for (let i = 0; i < count; i++) {
    const bits = halves[i]!;
    if ((bits & mask) === mask) throw nonFinite(source, slot, i, convert(bits));
    out[i] = convert(bits);
  }
  return out;
}

function nonFinite(source: string, slot: TensorSlot, index: number, value: number): SeqparError {
  return new SeqparError('ERR_MODEL_FORMAT', `${source}: tensor ${slot.name} holds a non-finite weight (${value}) at element ${index} of shape [${slot.shape}]`);
}

export async function readSafetensorsFile(path: string): Promise<Map<string, Tensor>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new SeqparError('ERR_FILE_NOT_FOUND', `cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  return parseSafetensors(bytes, path);
}

/** Encodes float32 tensors as safetensors, stored in `dtype` (rounded to nearest even). */
export function encodeSafetensors(tensors: ReadonlyMap<string, Tensor>, dtype: WeightDtype): Uint8Array {
  const header: Record<string, { dtype: WeightDtype; shape: number[]; data_offsets: [number, number] }> = {};
  let offset = 0;
  for (const [name, tensor] of tensors) {
    const size = tensor.data.length * DTYPE_BYTES[dtype];
    header[name] = { dtype, shape: [...tensor.shape], data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8); // keep the data 8-byte aligned
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const tensor of tensors.values()) {
    out.set(encode(tensor.data, dtype), at);
    at += tensor.data.length * DTYPE_BYTES[dtype];
  }
  return out;
}

function encode(values: Float32Array, dtype: WeightDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const convert = dtype === 'F16' ? f32ToF16 : f32ToBf16;
  const halves = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) halves[i] = convert(values[i]!);
  return new Uint8Array(halves.buffer);
}

export async function writeSafetensorsFile(path: string, tensors: ReadonlyMap<string, Tensor>, dtype: WeightDtype): Promise<void> {
  await writeFile(path, encodeSafetensors(tensors, dtype));
}
