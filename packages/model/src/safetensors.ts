import { readFile, writeFile } from 'node:fs/promises';
import { SeqparError, type Tensor } from '@seqpar/core';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './dtype.js';

/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {...} }`, then the raw tensor bytes
 * (offsets relative to the end of the header). We read F32, F16 and BF16 and always compute in float32.
 */
export type WeightDtype = 'F32' | 'F16' | 'BF16';

const BYTES: Record<WeightDtype, number> = { F32: 4, F16: 2, BF16: 2 };
const MAX_HEADER_BYTES = 100 * 2 ** 20;

interface TensorEntry {
  readonly dtype: string;
  readonly shape: number[];
  readonly data_offsets: [number, number];
}

/** Parses a safetensors file's bytes into float32 tensors by name. `source` names the file in errors. */
export function parseSafetensors(bytes: Uint8Array, source: string): Map<string, Tensor> {
  const fail = (why: string): never => {
    throw new SeqparError('ERR_MODEL_FORMAT', `${source}: ${why}`);
  };
  if (bytes.byteLength < 8) fail('truncated: no header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > bytes.byteLength) fail(`truncated or corrupt header (${headerLength} bytes declared)`);
  let header: Record<string, TensorEntry>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    return fail('header is not JSON');
  }
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, Tensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const dtype = entry.dtype as WeightDtype;
    if (!(dtype in BYTES)) fail(`tensor ${name} has dtype ${entry.dtype}; supported: F32, F16, BF16`);
    const count = entry.shape.reduce((a, b) => a * b, 1);
    const [begin, end] = entry.data_offsets;
    if (end - begin !== count * BYTES[dtype]) fail(`tensor ${name}: ${end - begin} bytes for shape [${entry.shape}] ${dtype}`);
    if (dataStart + end > bytes.byteLength) fail(`truncated: tensor ${name} ends past the end of the file`);
    tensors.set(name, { data: decode(bytes.subarray(dataStart + begin, dataStart + end), dtype, count), shape: entry.shape });
  }
  return tensors;
}

function decode(raw: Uint8Array, dtype: WeightDtype, count: number): Float32Array {
  const copy = new Uint8Array(raw); // a copy (Buffer#slice would not copy): aligned, independent of the file
  if (dtype === 'F32') return new Float32Array(copy.buffer, 0, count);
  const halves = new Uint16Array(copy.buffer, 0, count);
  const out = new Float32Array(count);
  const convert = dtype === 'F16' ? f16ToF32 : bf16ToF32;
  for (let i = 0; i < count; i++) out[i] = convert(halves[i]!);
  return out;
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
  const header: Record<string, TensorEntry> = {};
  let offset = 0;
  for (const [name, tensor] of tensors) {
    const size = tensor.data.length * BYTES[dtype];
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
    at += tensor.data.length * BYTES[dtype];
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
