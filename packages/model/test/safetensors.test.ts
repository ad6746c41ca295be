import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeSafetensors, loadModel, makeTinyModel, parseSafetensors, readSafetensorsFile } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'seqpar-safetensors-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A safetensors file from a header written by hand and `dataBytes` bytes of data (float32 1, 2, 3, ...). */
function craft(header: Record<string, unknown>, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  const values = Float32Array.from({ length: Math.floor(dataBytes / 4) }, (_, i) => i + 1);
  out.set(new Uint8Array(values.buffer), 8 + json.length);
  return out;
}

const f32 = (shape: unknown, offsets: unknown) => ({ dtype: 'F32', shape, data_offsets: offsets });
const rejects = (bytes: Uint8Array, message: RegExp) =>
  expect(() => parseSafetensors(bytes, 'w.safetensors')).toThrow(expect.objectContaining({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(message) }));

describe('safetensors header checks', () => {
  it('reads a well-formed file, empty tensors and metadata included', () => {
    const tensors = parseSafetensors(craft({ __metadata__: { format: 'pt' }, a: f32([2, 2], [0, 16]), none: f32([0, 3], [16, 16]), b: f32([1], [16, 20]) }, 20), 'w');
    expect([...tensors.get('a')!.data]).toEqual([1, 2, 3, 4]);
    expect(tensors.get('none')!.shape).toEqual([0, 3]);
    expect([...tensors.get('b')!.data]).toEqual([5]);
  });

  it('rejects tensors whose bytes overlap', () => {
    rejects(craft({ a: f32([4], [0, 16]), b: f32([4], [8, 24]) }, 24), /^w.safetensors: tensors a \[0, 16\) and b \[8, 24\) overlap/);
    // An empty tensor between them must not hide the overlap.
    rejects(craft({ a: f32([8], [0, 32]), e: f32([0], [8, 8]), b: f32([2], [16, 24]) }, 32), /tensors a .* and b .* overlap/);
  });

  it('rejects a negative begin offset instead of reading the header as weights', () => {
    rejects(craft({ a: f32([4], [-8, 8]) }, 8), /tensor a: data_offsets \[-8,8\] must be two non-negative integers/);
    rejects(craft({ a: f32([1], [4, 0]) }, 8), /tensor a: data_offsets \[4, 0\] end before they begin/);
    rejects(craft({ a: f32([1], ['0', '4']) }, 8), /tensor a: data_offsets/);
  });

  it('rejects a missing or non-array shape, and shapes that are not non-negative integers', () => {
    rejects(craft({ a: { dtype: 'F32', data_offsets: [0, 4] } }, 4), /tensor a: shape undefined is not an array/);
    rejects(craft({ a: f32(4, [0, 16]) }, 16), /tensor a: shape 4 is not an array/);
    rejects(craft({ a: f32([2.5, 2], [0, 20]) }, 20), /tensor a: shape \[2.5,2\] must hold non-negative integers/);
    rejects(craft({ a: f32([-1, -4], [0, 16]) }, 16), /tensor a: shape/);
    rejects(craft({ a: 'F32' }, 4), /tensor a: entry is not an object/);
  });

  it('rejects a byte length that disagrees with shape and dtype, and unknown dtypes', () => {
    rejects(craft({ a: f32([3], [0, 16]) }, 16), /tensor a: data_offsets \[0, 16\] hold 16 bytes, but shape \[3\] F32 needs 12/);
    rejects(craft({ a: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, 16), /tensor a: dtype "I64" is not supported/);
  });

  it('rejects truncated files and headers of absurd length', () => {
    const whole = craft({ a: f32([4], [0, 16]) }, 16);
    rejects(whole.subarray(0, whole.length - 4), /^w.safetensors: tensor a: truncated: data_offsets \[0, 16\] end past the 12 bytes of data/);
    rejects(whole.subarray(0, 20), /truncated: the header needs/);
    rejects(whole.subarray(0, 5), /truncated: no header/);
    const huge = new Uint8Array(whole);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 63n, true);
    rejects(huge, /corrupt header/);
    rejects(craft([] as unknown as Record<string, unknown>, 0), /header is not a JSON object/);
  });

  it.each([
    ['F32', NaN],
    ['F16', Infinity],
    ['BF16', NaN],
  ] as const)('rejects a non-finite %s weight (%s), naming the tensor and element', (dtype, bad) => {
    const data = Float32Array.of(1, 2, bad, 4);
    const bytes = encodeSafetensors(new Map([['w', { data, shape: [2, 2] }]]), dtype);
    rejects(bytes, new RegExp(`tensor w holds a non-finite weight \\(${bad}\\) at element 2 of shape \\[2,2\\]`));
  });

  it('names the file in errors read from disk, and a NaN in a model stops loadModel', async () => {
    const dir = join(root, 'nan');
    await makeTinyModel(dir, { seed: 2 });
    const path = join(dir, 'model.safetensors');
    const tensors = await readSafetensorsFile(path);
    tensors.get('model.layers.1.mlp.up_proj.weight')!.data[7] = NaN;
    writeFileSync(path, encodeSafetensors(tensors, 'F32'));
    await expect(loadModel(dir)).rejects.toMatchObject({
      code: 'ERR_MODEL_FORMAT',
      message: `${path}: tensor model.layers.1.mlp.up_proj.weight holds a non-finite weight (NaN) at element 7 of shape [128,64]`,
    });
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 3));
    await expect(loadModel(dir)).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(new RegExp(`^${path}: tensor .*: truncated`)) });
  });
});
