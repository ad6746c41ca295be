import { SeqparError } from './errors.js';

/**
 * NumPy's .npy preamble (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
 *
 *   offset 0   "\x93NUMPY"                       magic, 6 bytes
 *          6   major, minor                      1.0, 2.0 or 3.0
 *          8   header length                     u16 LE (v1) or u32 LE (v2, v3)
 *   10 or 12   header                            {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 *                                                latin1 (v1, v2) or utf-8 (v3), space padded, ends in '\n'
 *   dataStart  data                              C order; writers pad the header so this is a multiple of 64
 */
export type NpyDtype = 'float32' | 'float64' | 'int32' | 'int64';

export interface NpyHeader {
  readonly dtype: NpyDtype;
  readonly shape: number[];
  /** Byte offset of the first element. */
  readonly dataStart: number;
  /** Bytes of data the shape needs. */
  readonly dataBytes: number;
}

export const NPY_ITEM_BYTES: Record<NpyDtype, number> = { float32: 4, float64: 8, int32: 4, int64: 8 };

/** Bytes needed before `npyDataStart` can answer: magic, version and the longest (v2/v3) length field. */
export const NPY_PREAMBLE_BYTES = 12;

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
// '|' (byte order not applicable) and '=' (native: little-endian on every platform Node runs us on) read as '<'.
const DESCR: Record<string, NpyDtype> = { '<f4': 'float32', '<f8': 'float64', '<i4': 'int32', '<i8': 'int64' };

/** Where the data starts, from the first NPY_PREAMBLE_BYTES bytes (fewer only if the file is that short). */
export function npyDataStart(preamble: Uint8Array, source: string): number {
  if (preamble.length < 8 || MAGIC.some((byte, i) => preamble[i] !== byte)) {
    throw new SeqparError('ERR_NPY_FORMAT', `${source} is not a .npy file (bad magic)`);
  }
  const major = preamble[6]!;
  if (major < 1 || major > 3) throw new SeqparError('ERR_NPY_FORMAT', `${source}: unsupported .npy version ${major}.${preamble[7]}`);
  const lengthBytes = major === 1 ? 2 : 4;
  if (preamble.length < 8 + lengthBytes) throw new SeqparError('ERR_NPY_TRUNCATED', `${source}: truncated .npy preamble`);
  const view = new DataView(preamble.buffer, preamble.byteOffset, preamble.byteLength);
  return 8 + lengthBytes + (major === 1 ? view.getUint16(8, true) : view.getUint32(8, true));
}

/** Parses the preamble and header; `bytes` must start at the file's start and hold at least the whole header. */
export function parseNpyHeader(bytes: Uint8Array, source: string): NpyHeader {
  const dataStart = npyDataStart(bytes.subarray(0, NPY_PREAMBLE_BYTES), source);
  if (bytes.length < dataStart) throw new SeqparError('ERR_NPY_TRUNCATED', `${source}: truncated .npy header`);
  const headerStart = bytes[6] === 1 ? 10 : 12;
  const header = new TextDecoder(bytes[6] === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new SeqparError('ERR_NPY_FORMAT', `${source}: malformed .npy header ${JSON.stringify(header.trim())}`);
  }
  const shape = shapeText
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map(Number);
  if (shape.some((size) => !Number.isSafeInteger(size) || size < 0)) throw new SeqparError('ERR_NPY_FORMAT', `${source}: bad shape (${shapeText})`);
  // Fortran order only changes the layout of arrays with two or more dimensions.
  if (fortran === 'True' && shape.length > 1) {
    throw new SeqparError('ERR_NPY_FORTRAN_ORDER', `${source} is in Fortran order; save it C-contiguous (np.ascontiguousarray)`);
  }
  const dtype = DESCR[descr.replace(/^[|=]/, '<')];
  if (!dtype) throw new SeqparError('ERR_NPY_DTYPE', `${source} has dtype '${descr}'; supported: little-endian float32, float64, int32, int64`);
  return { dtype, shape, dataStart, dataBytes: shape.reduce((a, b) => a * b, 1) * NPY_ITEM_BYTES[dtype] };
}

/** A version 1.0 preamble and header for a float32 C-order array, padded so the data starts on 64 bytes. */
export function formatFloat32NpyHeader(shape: readonly number[]): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const out = new Uint8Array(10 + header.length);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  return out;
}
