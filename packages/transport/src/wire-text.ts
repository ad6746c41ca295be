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
