import { open, type FileHandle } from 'node:fs/promises';
import { SeqparError, UsageError } from './errors.js';
import { formatFloat32NpyHeader, NPY_ITEM_BYTES, NPY_PREAMBLE_BYTES, npyDataStart, parseNpyHeader, type NpyDtype, type NpyHeader } from './npy-header.js';
import { bytesOf, type Tensor } from './tensor.js';

export type { NpyDtype } from './npy-header.js';

export interface NpyArray {
  readonly dtype: NpyDtype;
  readonly shape: number[];
  readonly data: Float32Array | Float64Array | Int32Array | BigInt64Array;
}

type NpyData = NpyArray['data'];
const TYPED: Record<NpyDtype, new (length: number) => NpyData> = { float32: Float32Array, float64: Float64Array, int32: Int32Array, int64: BigInt64Array };

/** Parses .npy bytes (C order, little-endian f4/f8/i4/i8); `source` names the data in errors. Copies the data once. */
export function readNpy(bytes: Uint8Array, source = '.npy data'): NpyArray {
  const header = parseNpyHeader(bytes, source);
  checkComplete(header, bytes.length - header.dataStart, source);
  const data = new TYPED[header.dtype](header.dataBytes / NPY_ITEM_BYTES[header.dtype]);
  // The copy gives the typed array an aligned buffer of its own, whatever the offset of `bytes`.
  bytesOf(data).set(bytes.subarray(header.dataStart, header.dataStart + header.dataBytes));
  return { dtype: header.dtype, shape: header.shape, data };
}

/**
 * Reads a .npy file: the header first, then the data straight into a typed array of its own (no staging copy, so
 * a multi-GiB file costs its size once, and the result's buffer can be transferred to a worker thread).
 */
export async function readNpyFile(path: string): Promise<NpyArray> {
  let file: FileHandle;
  try {
    file = await open(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? `no such file: ${path}` : `cannot read ${path}: ${(error as Error).message}`, 'ERR_FILE_NOT_FOUND');
  }
  try {
    const stats = await file.stat();
    if (!stats.isFile()) throw new UsageError(`${path} is not a file`, 'ERR_FILE_NOT_FOUND');
    const size = stats.size;
    const dataStart = npyDataStart(await readAt(file, new Uint8Array(Math.min(size, NPY_PREAMBLE_BYTES)), 0), path);
    const header = parseNpyHeader(await readAt(file, new Uint8Array(Math.min(size, dataStart)), 0), path);
    checkComplete(header, size - header.dataStart, path);
    const data = new TYPED[header.dtype](header.dataBytes / NPY_ITEM_BYTES[header.dtype]);
    const read = await readAt(file, bytesOf(data), header.dataStart);
    if (read.length < header.dataBytes) checkComplete(header, read.length, path);
    return { dtype: header.dtype, shape: header.shape, data };
  } finally {
    await file.close();
  }
}

/** Reads a float32 .npy as a Tensor; any other dtype is ERR_NPY_DTYPE (the CLI contract takes float32 only). */
export async function readFloat32NpyFile(path: string): Promise<Tensor> {
  const array = await readNpyFile(path);
  if (array.dtype !== 'float32') throw new SeqparError('ERR_NPY_DTYPE', `${path} is ${array.dtype}; seqpar reads float32 tensors (use arr.astype(np.float32))`);
  return { data: array.data as Float32Array, shape: array.shape };
}

/** Encodes a float32 tensor as a version 1.0 .npy with the header padded to 64 bytes. */
export function encodeNpy(t: Tensor): Uint8Array {
  const header = formatFloat32NpyHeader(t.shape);
  const out = new Uint8Array(header.length + t.data.byteLength);
  out.set(header, 0);
  out.set(bytesOf(t.data), header.length);
  return out;
}

/** Writes a float32 tensor as .npy; the data goes out from the tensor's own memory, not through a joined copy. */
export async function writeNpyFile(path: string, t: Tensor): Promise<void> {
  let file: FileHandle | undefined;
  try {
    file = await open(path, 'w');
    await file.writev([formatFloat32NpyHeader(t.shape), bytesOf(t.data)]);
  } catch (error) {
    throw new SeqparError('ERR_FILE_NOT_FOUND', `cannot write ${path}: ${(error as Error).message}`, { cause: error });
  } finally {
    await file?.close();
  }
}

function checkComplete(header: NpyHeader, available: number, source: string): void {
  if (available < header.dataBytes) {
    throw new SeqparError('ERR_NPY_TRUNCATED', `${source} is truncated: shape (${header.shape.join(', ')}) needs ${header.dataBytes} bytes of data, found ${available}`);
  }
}

/** Fills `target` from `position` on (short only at end of file); returns the filled part. */
async function readAt(file: FileHandle, target: Uint8Array, position: number): Promise<Uint8Array> {
  let filled = 0;
  while (filled < target.length) {
    // Reads of more than 2 GiB are refused by Node, so large arrays come in pieces.
    const { bytesRead } = await file.read(target, filled, Math.min(target.length - filled, 1 << 30), position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return target.subarray(0, filled);
}
