import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeNpy, readFloat32NpyFile, readNpy, readNpyFile, writeNpyFile } from '../src/index.js';

/** Builds .npy bytes by hand, as NumPy would write them. */
function npyBytes(descr: string, shape: string, data: Uint8Array, { major = 1, fortran = false } = {}): Uint8Array {
  const prefix = major === 1 ? 10 : 12;
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shape}, }`;
  header += ' '.repeat(63 - ((prefix + header.length) % 64)) + '\n';
  const out = new Uint8Array(prefix + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(new TextEncoder().encode(header), prefix);
  out.set(data, prefix + header.length);
  return out;
}

const bytesOf = (array: ArrayBufferView) => new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
const dir = mkdtempSync(join(tmpdir(), 'seqpar-npy-'));

describe('.npy', () => {
  it('round-trips float32 through a file with a 64-byte aligned header', async () => {
    const t = { data: Float32Array.from({ length: 24 }, (_, i) => i / 3 - 2), shape: [2, 3, 4] };
    const path = join(dir, 't.npy');
    await writeNpyFile(path, t);
    const back = await readFloat32NpyFile(path);
    expect(back.shape).toEqual([2, 3, 4]);
    expect(Array.from(back.data)).toEqual(Array.from(t.data));
    expect((encodeNpy(t).length - 24 * 4) % 64).toBe(0);
    expect(readNpy(encodeNpy({ data: new Float32Array(3), shape: [3] })).shape).toEqual([3]);
  });

  it('reads version 1 and 2 headers and float64, int32 and int64 data, and scalars', () => {
    expect(Array.from(readNpy(npyBytes('<f8', '(2,)', bytesOf(Float64Array.from([1.5, -2])), { major: 2 })).data)).toEqual([1.5, -2]);
    expect(Array.from(readNpy(npyBytes('<i4', '(1, 3)', bytesOf(Int32Array.from([1, -2, 3])))).data)).toEqual([1, -2, 3]);
    const int64 = readNpy(npyBytes('<i8', '(2,)', bytesOf(BigInt64Array.from([5n, -7n]))));
    expect(int64.dtype).toBe('int64');
    expect(Array.from(int64.data)).toEqual([5n, -7n]);
    expect(readNpy(npyBytes('<f4', '()', bytesOf(Float32Array.from([4])))).shape).toEqual([]);
  });

  it('rejects Fortran order, unsupported dtypes, truncation, bad magic and missing files with codes', async () => {
    const floats = bytesOf(Float32Array.from([1, 2, 3, 4]));
    expect(() => readNpy(npyBytes('<f4', '(2, 2)', floats, { fortran: true }))).toThrow(expect.objectContaining({ code: 'ERR_NPY_FORTRAN_ORDER' }));
    expect(() => readNpy(npyBytes('>f4', '(4,)', floats))).toThrow(expect.objectContaining({ code: 'ERR_NPY_DTYPE' }));
    expect(() => readNpy(npyBytes('<c8', '(2,)', floats))).toThrow(expect.objectContaining({ code: 'ERR_NPY_DTYPE' }));
    expect(() => readNpy(npyBytes('<f4', '(5,)', floats))).toThrow(expect.objectContaining({ code: 'ERR_NPY_TRUNCATED' }));
    expect(() => readNpy(npyBytes('<f4', '(4,)', floats).subarray(0, 30))).toThrow(expect.objectContaining({ code: 'ERR_NPY_TRUNCATED' }));
    expect(() => readNpy(new TextEncoder().encode('not a numpy file at all'))).toThrow(expect.objectContaining({ code: 'ERR_NPY_FORMAT' }));
    expect(() => readNpy(npyBytes('<f4', 'oops', floats))).toThrow(expect.objectContaining({ code: 'ERR_NPY_FORMAT' }));
    await expect(readNpyFile(join(dir, 'missing.npy'))).rejects.toMatchObject({ code: 'ERR_FILE_NOT_FOUND', exitCode: 2 });
    const f64 = join(dir, 'f64.npy');
    writeFileSync(f64, npyBytes('<f8', '(1,)', bytesOf(Float64Array.from([1]))));
    await expect(readFloat32NpyFile(f64)).rejects.toMatchObject({ code: 'ERR_NPY_DTYPE' });
  });
});
