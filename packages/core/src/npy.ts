import { readFile, writeFile } from 'node:fs/promises';
import { SeqparError, UsageError } from './errors.js';
import type { Tensor } from './tensor.js';

/**
 * NumPy's .npy format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
 *   "\x93NUMPY" | major | minor | header length (u16 LE for v1, u32 LE for v2/v3) | header | data
 * The header is a Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and a newline so that the data starts on a 64-byte boundary.
 */
export type NpyDtype = 'float32' | 'float64' | 'int32' | 'int64';

export interface NpyArray {
  readonly dtype: NpyDtype;
  readonly shape: number[];
  readonly data: Float32Array | Float64Array | Int32Array | BigInt64Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
const DESCR: Record<string, NpyDtype> = { '<f4': 'float32', '<f8': 'float64', '<i4': 'int32', '<i8': 'int64' };
const ITEM_BYTES: Record<NpyDtype, number> = { float32: 4, float64: 8, int32: 4, int64: 8 };

/** Parses .npy bytes; `source` names the file in errors. */
export function readNpy(bytes: Uint8Array, source = '.npy data'): NpyArray {
  if (bytes.length < 10 || MAGIC.some((byte, i) => bytes[i] !== byte)) {
    throw new SeqparError('ERR_NPY_FORMAT', `${source} is not a .npy file (bad magic)`);
  }
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major < 1 || major > 3) throw new SeqparError('ERR_NPY_FORMAT', `${source}: unsupported .npy version ${major}.${bytes[7]}`);
  const headerStart = major === 1 ? 10 : 12;
  if (bytes.length < headerStart) throw new SeqparError('ERR_NPY_TRUNCATED', `${source}: truncated header`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = headerStart + headerLength;
  if (bytes.length < dataStart) throw new SeqparError('ERR_NPY_TRUNCATED', `${source}: truncated header`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));
  const { descr, fortranOrder, shape } = parseHeader(header, source);
  if (fortranOrder) throw new SeqparError('ERR_NPY_FORTRAN_ORDER', `${source} is in Fortran order; save it C-contiguous (np.ascontiguousarray)`);
  // '|' (not applicable) and '=' (native, little-endian on every platform we run on) read as '<'.
  const dtype = DESCR[descr.replace(/^[|=]/, '<')];
  if (!dtype) throw new SeqparError('ERR_NPY_DTYPE', `${source} has dtype '${descr}'; supported: little-endian float32, float64, int32, int64`);
  const count = shape.reduce((a, b) => a * b, 1);
  const byteLength = count * ITEM_BYTES[dtype];
  if (bytes.length - dataStart < byteLength) {
    throw new SeqparError('ERR_NPY_TRUNCATED', `${source} is truncated: shape (${shape.join(', ')}) needs ${byteLength} bytes of data, found ${bytes.length - dataStart}`);
  }
  // One copy: aligned for the typed array, and independent of the (possibly pooled) file buffer.
  const data = new Uint8Array(bytes.subarray(dataStart, dataStart + byteLength)).buffer;
  const typed = { float32: Float32Array, float64: Float64Array, int32: Int32Array, int64: BigInt64Array }[dtype];
  return { dtype, shape, data: new typed(data) };
}

function parseHeader(header: string, source: string): { descr: string; fortranOrder: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new SeqparError('ERR_NPY_FORMAT', `${source}: malformed .npy header ${JSON.stringify(header.trim())}`);
  }
  const shape = shapeText.split(',').map((part) => part.trim()).filter((part) => part !== '').map(Number);
  if (shape.some((size) => !Number.isInteger(size) || size < 0)) throw new SeqparError('ERR_NPY_FORMAT', `${source}: bad shape (${shapeText})`);
  return { descr, fortranOrder: fortran === 'True', shape };
}

export async function readNpyFile(path: string): Promise<NpyArray> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? `no such file: ${path}` : `cannot read ${path}: ${(error as Error).message}`, 'ERR_FILE_NOT_FOUND');
  }
  return readNpy(bytes, path);
}

/** Reads a float32 .npy as a Tensor; any other dtype is ERR_NPY_DTYPE (the CLI contract takes float32 only). */
export async function readFloat32NpyFile(path: string): Promise<Tensor> {
  const array = await readNpyFile(path);
  if (array.dtype !== 'float32') throw new SeqparError('ERR_NPY_DTYPE', `${path} is ${array.dtype}; seqpar reads float32 tensors (use arr.astype(np.float32))`);
  return { data: array.data as Float32Array, shape: array.shape };
}

/** Encodes a float32 tensor as a version 1.0 .npy with the header padded to 64 bytes. */
export function encodeNpy(t: Tensor): Uint8Array {
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const out = new Uint8Array(10 + header.length + t.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), 10 + header.length);
  return out;
}

export async function writeNpyFile(path: string, t: Tensor): Promise<void> {
  try {
    await writeFile(path, encodeNpy(t));
  } catch (error) {
    throw new SeqparError('ERR_FILE_NOT_FOUND', `cannot write ${path}: ${(error as Error).message}`, { cause: error });
  }
}
