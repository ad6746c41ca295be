import { SeqparError } from '@seqpar/core';

/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {...} }`, then the raw tensor bytes
 * (offsets relative to the end of the header). We read F32, F16 and BF16 and always compute in float32.
 *
 *   | N (u64 LE) | header JSON (N bytes) | data: tensor a [begin_a, end_a) | tensor b [begin_b, end_b) | ... |
 */
export type WeightDtype = 'F32' | 'F16' | 'BF16';

export const DTYPE_BYTES: Readonly<Record<WeightDtype, number>> = { F32: 4, F16: 2, BF16: 2 };

/** Far above any real header (a 405B checkpoint's shard index is a few hundred KiB), far below memory trouble. */
const MAX_HEADER_BYTES = 100 * 2 ** 20;

/** One tensor of a checked header: its bytes are `data.subarray(begin, end)`, exactly count × itemsize of them. */
export interface TensorSlot {
  readonly name: string;
  readonly dtype: WeightDtype;
  readonly shape: number[];
  readonly count: number;
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsLayout {
  readonly tensors: readonly TensorSlot[];
  /** Byte offset of the data section in the file. */
  readonly dataStart: number;
}

/**
 * Reads and checks a safetensors header against the file's length before any weight is touched: every tensor's
 * dtype is known, its shape is a list of non-negative integers, its offsets are integers inside the data section
 * that hold exactly shape × itemsize bytes, and no two tensors share a byte. A file that fails any of these is
 * ERR_MODEL_FORMAT naming `source` and the tensor. (Without the checks a negative offset reads the header as
 * weights and overlapping tensors alias each other.)
 */
export function readSafetensorsLayout(bytes: Uint8Array, source: string): SafetensorsLayout {
  const fail = (why: string): never => {
    throw new SeqparError('ERR_MODEL_FORMAT', `${source}: ${why}`);
  };
  if (bytes.byteLength < 8) fail('truncated: no header');
  const declared = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (declared < 2n || declared > BigInt(MAX_HEADER_BYTES)) fail(`corrupt header: ${declared} bytes declared (at most ${MAX_HEADER_BYTES})`);
  const headerLength = Number(declared);
  if (8 + headerLength > bytes.byteLength) fail(`truncated: the header needs ${headerLength} bytes, the file has ${bytes.byteLength - 8} after its length`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    return fail('header is not JSON');
  }
  if (!isRecord(header)) return fail('header is not a JSON object');
  const dataStart = 8 + headerLength;
  const dataLength = bytes.byteLength - dataStart;
  const tensors = Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .map(([name, entry]) => checkEntry(name, entry, dataLength, (why) => fail(`tensor ${name}: ${why}`)));
  // Empty tensors own no bytes, so they overlap nothing; among the rest, sorted by begin, neighbours must not touch.
  const byBegin = tensors.filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < byBegin.length; i++) {
    const [previous, next] = [byBegin[i - 1]!, byBegin[i]!];
    if (next.begin < previous.end) fail(`tensors ${previous.name} [${previous.begin}, ${previous.end}) and ${next.name} [${next.begin}, ${next.end}) overlap`);
  }
  return { tensors, dataStart };
}

function checkEntry(name: string, entry: unknown, dataLength: number, fail: (why: string) => never): TensorSlot {
  if (!isRecord(entry)) return fail('entry is not an object');
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) fail(`dtype ${JSON.stringify(dtype)} is not supported (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
  if (!Array.isArray(shape)) return fail(`shape ${JSON.stringify(shape)} is not an array`);
  if (!shape.every(isCount)) fail(`shape ${JSON.stringify(shape)} must hold non-negative integers`);
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  const itemBytes = DTYPE_BYTES[dtype as WeightDtype];
  if (!Number.isSafeInteger(count * itemBytes)) fail(`shape [${shape}] is too large`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) fail(`data_offsets ${JSON.stringify(offsets)} must be two non-negative integers`);
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(`data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataLength) fail(`truncated: data_offsets [${begin}, ${end}] end past the ${dataLength} bytes of data in the file`);
  if (end - begin !== count * itemBytes) fail(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but shape [${shape}] ${dtype} needs ${count * itemBytes}`);
  return { name, dtype: dtype as WeightDtype, shape: shape as number[], count, begin, end };
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
