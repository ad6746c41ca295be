import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bytesOf, encodeNpy, readFloat32NpyFile, readNpy, readNpyFile, writeNpyFile } from '../src/index.js';

/** Builds .npy bytes by hand, as NumPy writes them (`extra` lands inside the header dict, e.g. a v3 utf-8 key). */
function npyBytes(descr: string, shape: string, data: Uint8Array, { major = 1, fortran = false, extra = '' } = {}): Uint8Array {
  const prefix = major === 1 ? 10 : 12;
  const dict = new TextEncoder().encode(`{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shape}, ${extra}}`);
  const padding = 63 - ((prefix + dict.length) % 64);
  const header = new Uint8Array([...dict, ...new Array<number>(padding).fill(0x20), 0x0a]);
  const out = new Uint8Array(prefix + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(header, prefix);
  out.set(data, prefix + header.length);
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'seqpar-npy-'));
const fileWith = (name: string, bytes: Uint8Array) => {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
};
const floats = bytesOf(Float32Array.from([1, 2, 3, 4]));

describe('.npy', () => {
  it('round-trips float32 through a file with a 64-byte aligned header', async () => {
    const t = { data: Float32Array.from({ length: 24 }, (_, i) => i / 3 - 2), shape: [2, 3, 4] };
    const path = join(dir, 't.npy');
    await writeNpyFile(path, t);
    const back = await readFloat32NpyFile(path);
    expect(back.shape).toEqual([2, 3, 4]);
    expect(Array.from(back.data)).toEqual(Array.from(t.data));
    expect(back.data.byteOffset).toBe(0);
    expect(back.data.buffer.byteLength).toBe(24 * 4);
    expect((encodeNpy(t).length - 24 * 4) % 64).toBe(0);
    expect(readNpy(encodeNpy({ data: new Float32Array(3), shape: [3] })).shape).toEqual([3]);
    expect(new TextDecoder().decode(encodeNpy(t).subarray(10, 60))).toBe("{'descr': '<f4', 'fortran_order': False, 'shape': ");
    await writeNpyFile(path, { data: new Float32Array(0), shape: [0, 4] });
    expect(await readFloat32NpyFile(path)).toEqual({ data: new Float32Array(0), shape: [0, 4] });
  });

  it('reads version 1, 2 and 3 headers and float64, int32 and int64 data, and scalars', async () => {
    expect(Array.from(readNpy(npyBytes('<f8', '(2,)', bytesOf(Float64Array.from([1.5, -2])), { major: 2 })).data)).toEqual([1.5, -2]);
    expect(Array.from(readNpy(npyBytes('<i4', '(1, 3)', bytesOf(Int32Array.from([1, -2, 3])))).data)).toEqual([1, -2, 3]);
    const int64 = readNpy(npyBytes('<i8', '(2,)', bytesOf(BigInt64Array.from([5n, -7n]))));
    expect(int64.dtype).toBe('int64');
    expect(Array.from(int64.data)).toEqual([5n, -7n]);
    expect(readNpy(npyBytes('<f4', '()', bytesOf(Float32Array.from([4])))).shape).toEqual([]);
    const v3 = readNpy(npyBytes('<f4', '(2, 2)', floats, { major: 3, extra: "'note': 'größe', " }));
    expect(v3).toEqual({ dtype: 'float32', shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) });
    const fromFile = await readNpyFile(fileWith('v2.npy', npyBytes('<i8', '(3,)', bytesOf(BigInt64Array.from([1n, 2n, 3n])), { major: 2 })));
    expect(fromFile).toEqual({ dtype: 'int64', shape: [3], data: BigInt64Array.from([1n, 2n, 3n]) });
  });

  it("accepts '|' and '=' byte orders, 1-D Fortran order and data at an unaligned offset", () => {
    expect(readNpy(npyBytes('|f4', '(4,)', floats)).dtype).toBe('float32');
    expect(readNpy(npyBytes('=i4', '(4,)', floats)).dtype).toBe('int32');
    expect(Array.from(readNpy(npyBytes('<f4', '(4,)', floats, { fortran: true })).data)).toEqual([1, 2, 3, 4]);
    const bytes = npyBytes('<f4', '(4,)', floats);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    expect(Array.from(readNpy(shifted.subarray(1)).data)).toEqual([1, 2, 3, 4]);
  });

  it('rejects Fortran order, unsupported dtypes, truncation and bad headers with codes', () => {
    const code = (c: string) => expect.objectContaining({ code: c });
    expect(() => readNpy(npyBytes('<f4', '(2, 2)', floats, { fortran: true }))).toThrow(code('ERR_NPY_FORTRAN_ORDER'));
    expect(() => readNpy(npyBytes('>f4', '(4,)', floats))).toThrow(code('ERR_NPY_DTYPE'));
    expect(() => readNpy(npyBytes('<c8', '(2,)', floats))).toThrow(code('ERR_NPY_DTYPE'));
    expect(() => readNpy(npyBytes('<f4', '(5,)', floats))).toThrow(code('ERR_NPY_TRUNCATED'));
    expect(() => readNpy(npyBytes('<f4', '(4,)', floats).subarray(0, 30))).toThrow(code('ERR_NPY_TRUNCATED'));
    expect(() => readNpy(npyBytes('<f4', '(4,)', floats, { major: 2 }).subarray(0, 11))).toThrow(code('ERR_NPY_TRUNCATED'));
    expect(() => readNpy(new TextEncoder().encode('not a numpy file at all'))).toThrow(code('ERR_NPY_FORMAT'));
    expect(() => readNpy(new Uint8Array(0))).toThrow(code('ERR_NPY_FORMAT'));
    expect(() => readNpy(npyBytes('<f4', '(4,)', floats, { major: 4 }))).toThrow(code('ERR_NPY_FORMAT'));
    expect(() => readNpy(npyBytes('<f4', 'oops', floats))).toThrow(code('ERR_NPY_FORMAT'));
    expect(() => readNpy(npyBytes('<f4', '(-1,)', floats))).toThrow(code('ERR_NPY_FORMAT'));
  });

  it('reports file problems with codes: missing, not a file, truncated, bad magic, not float32, unwritable', async () => {
    await expect(readNpyFile(join(dir, 'missing.npy'))).rejects.toMatchObject({ code: 'ERR_FILE_NOT_FOUND', exitCode: 2 });
    await expect(readNpyFile(dir)).rejects.toMatchObject({ code: 'ERR_FILE_NOT_FOUND' });
    await expect(readNpyFile(fileWith('short.npy', npyBytes('<f4', '(8,)', floats)))).rejects.toMatchObject({ code: 'ERR_NPY_TRUNCATED' });
    await expect(readNpyFile(fileWith('header.npy', npyBytes('<f4', '(4,)', floats).subarray(0, 40)))).rejects.toMatchObject({ code: 'ERR_NPY_TRUNCATED' });
    await expect(readNpyFile(fileWith('empty.npy', new Uint8Array(0)))).rejects.toMatchObject({ code: 'ERR_NPY_FORMAT' });
    await expect(readNpyFile(fileWith('text.npy', new TextEncoder().encode('a,b\n1,2\n')))).rejects.toMatchObject({ code: 'ERR_NPY_FORMAT' });
    await expect(readFloat32NpyFile(fileWith('f64.npy', npyBytes('<f8', '(1,)', bytesOf(Float64Array.from([1])))))).rejects.toMatchObject({ code: 'ERR_NPY_DTYPE' });
    await expect(writeNpyFile(join(dir, 'no-such-dir', 'x.npy'), { data: new Float32Array(1), shape: [1] })).rejects.toMatchObject({ code: 'ERR_FILE_NOT_FOUND' });
  });
});
