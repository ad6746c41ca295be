import { Unpackr } from 'msgpackr';

/**
 * The small per-frame fields of a wire message (its tag, its msgpack header) without a call into C++ or a fresh
 * typed array each. A frame is a few of these beside one socket write, and in a ping-pong every process resumes
 * with cold caches: there each Buffer.write/toString, subarray or DataView cost about a microsecond, which
 * summed to most of seqpar's ws round trip beyond raw ws.
 */

/** Tags up to this many characters are checked and copied byte by byte; longer or non-ASCII ones go through Buffer. */
const SHORT_TAG = 64;

/** UTF-8 length of `tag` when it is short ASCII (its length), else -1. */
export function asciiLength(tag: string): number {
  if (tag.length > SHORT_TAG) return -1;
  for (let i = 0; i < tag.length; i += 1) if (tag.charCodeAt(i) > 0x7f) return -1;
  return tag.length;
}

/** Writes a tag that {@link asciiLength} accepted. */
export function writeAscii(target: Uint8Array, at: number, tag: string): void {
  for (let i = 0; i < tag.length; i += 1) target[at + i] = tag.charCodeAt(i);
}

/** The UTF-8 string of `bytes[start, end)`; short ASCII is decoded in JS. */
export function readTag(bytes: Buffer, start: number, end: number): string {
  if (end - start > SHORT_TAG) return bytes.toString('utf8', start, end);
  let tag = '';
  for (let i = start; i < end; i += 1) {
    const code = bytes[i]!;
    if (code > 0x7f) return bytes.toString('utf8', start, end);
    tag += String.fromCharCode(code);
  }
  return tag;
}

/**
 * msgpackr caches a DataView on every source it unpacks (a new property, so a new shape, per message buffer):
 * a small field is copied into one long-lived buffer and unpacked there instead. Binary values are copied out
 * (`copyBuffers`), so nothing decoded refers to that buffer once the next field overwrites it.
 */
const unpackr = new Unpackr({ useRecords: false, copyBuffers: true });
const scratch = new Uint8Array(256);
const scratchRange = { start: 0, end: 0 };

/** msgpack of `bytes[start, end)`, which must hold exactly one value. */
export function unpackField(bytes: Uint8Array, start: number, end: number): unknown {
  const length = end - start;
  if (length > scratch.byteLength) return unpackr.unpack(bytes.subarray(start, end));
  for (let i = 0; i < length; i += 1) scratch[i] = bytes[start + i]!;
  scratchRange.end = length;
  return unpackr.unpack(scratch, scratchRange);
}

/**
 * msgpack of a small flat header (up to 15 keys of short ASCII, each a number, boolean, null or short ASCII
 * string) written into `out` from 0 as msgpack that msgpackr reads back to the same values; returns its length,
 * or -1 for any other header (msgpackr packs that one). Most frame headers are such (`{ i }`, `{ seq }`,
 * `{ layer, step }`), and msgpackr's general writer cost several times this per frame.
 */
export function packFlatHeader(header: Record<string, unknown>, out: Uint8Array): number {
  let at = 1;
  let keys = 0;
  for (const key in header) {
    if (++keys > 15 || (at = writeShortAscii(out, at, key)) < 0) return -1;
    const value = header[key];
    if (typeof value === 'number') at = writeNumber(out, at, value);
    else if (typeof value === 'string') at = writeShortAscii(out, at, value);
    else if (typeof value === 'boolean') out[at++] = value ? 0xc3 : 0xc2;
    else if (value === null) out[at++] = 0xc0;
    else return -1;
    if (at < 0 || at > out.byteLength - 16) return -1;
  }
  out[0] = 0x80 | keys;
  return at;
}

/** fixstr of a string of at most 31 ASCII characters, or -1. */
function writeShortAscii(out: Uint8Array, at: number, text: string): number {
  if (text.length > 31 || at + 1 + text.length > out.byteLength) return -1;
  out[at] = 0xa0 | text.length;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) return -1;
    out[at + 1 + i] = code;
  }
  return at + 1 + text.length;
}

const float = new DataView(new ArrayBuffer(8));

function writeNumber(out: Uint8Array, at: number, value: number): number {
  if (value >>> 0 === value) {
    if (value < 0x80) return ((out[at] = value), at + 1);
    out[at] = 0xce;
    return writeBigEndian(out, at + 1, value, 4);
  }
  if ((value | 0) === value) {
    if (value >= -0x20) return ((out[at] = value & 0xff), at + 1);
    out[at] = 0xd2;
    return writeBigEndian(out, at + 1, value >>> 0, 4);
  }
  out[at] = 0xcb;
  float.setFloat64(0, value);
  for (let i = 0; i < 8; i += 1) out[at + 1 + i] = float.getUint8(i);
  return at + 9;
}

function writeBigEndian(out: Uint8Array, at: number, value: number, bytes: number): number {
  for (let i = bytes - 1; i >= 0; i -= 1, value = Math.floor(value / 256)) out[at + i] = value & 0xff;
  return at + bytes;
}
