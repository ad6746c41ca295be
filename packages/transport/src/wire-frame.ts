import { SeqparError } from '@seqpar/core';
import { pack } from 'msgpackr';
import type { FrameHeader } from './transport.js';
import { asciiLength, packFlatHeader, readTag, unpackField, writeAscii } from './wire-text.js';

/**
 * WebSocket binary messages. A small frame is one message with its payload copied in raw, starting on an 8-byte
 * boundary so a receiver can view it as Float32Array/Float64Array directly.
 *
 *   0      1    4             8                8+M       align8(8+M)
 *   +------+----+-------------+----------------+---------+------------------+
 *   | kind | 0  | M (u32 LE)  | meta (M bytes) | 0 pad   | payload bytes    |
 *   +------+----+-------------+----------------+---------+------------------+
 *   kind 1 DATA: meta in a fixed binary layout (below): a frame's own work must stay small beside a socket round
 *          trip, and msgpack of a [tag, header, ref, credit] array cost more than the rest of it put together
 *   kind 2 CREDIT: meta msgpack, bytes consumed
 *   kind 3 CONTROL: meta msgpack, a transport-private object (shm slot release)
 *   kind 4 DATA_HEAD: meta msgpack [tag, header, byteLength], no payload bytes; the NEXT message on the
 *          connection is the payload, exactly byteLength raw bytes without any prefix.
 *
 *   DATA meta:
 *   0          2       3   4           8                   8|16       +T            +H
 *   +----------+-------+---+-----------+-------------------+----------+-------------+-----------------+
 *   | T (u16)  | flags | 0 | H (u32)   | credit (f64) if 1 | tag utf8 | header      | ref (msgpack)   |
 *   +----------+-------+---+-----------+-------------------+----------+-------------+-----------------+
 *   flags: 1 credit follows (bytes the sender's caller consumed from the receiver, returned on the way; > 0),
 *          2 ref follows (transport-private, e.g. an shm slot: the rest of the meta, a msgpack array).
 *   header: msgpack of a plain object, H bytes; H = 0 stands for {} (most control-free frames carry a small one).
 *
 * DATA_HEAD exists for big payloads: the sender hands the caller's bytes to the socket as they are (joining
 * them with a prefix would copy megabytes into a fresh buffer per frame), and the receiver gets the payload
 * message from ws as one buffer of its own, which is 8-byte aligned whenever ws had to assemble it.
 */
export const enum WireKind {
  Data = 1,
  Credit = 2,
  Control = 3,
  DataHead = 4,
}

export type WireMessage =
  | { kind: WireKind.Data; tag: string; header: FrameHeader; payload: Uint8Array; ref?: unknown[]; credit?: number }
  | { kind: WireKind.DataHead; tag: string; header: FrameHeader; byteLength: number }
  | { kind: WireKind.Credit; bytes: number }
  | { kind: WireKind.Control; control: Record<string, unknown> };

const PREFIX = 8;
const align8 = (n: number) => (n + 7) & ~7;

const DATA_FIXED = 8;
const CREDIT_BYTES = 8;
const HAS_CREDIT = 1;
const HAS_REF = 2;
/** Where a flat header is packed before its length is known (wire-text.ts). */
const headerScratch = new Uint8Array(256);

export function encodeData(tag: string, header: FrameHeader, payload: Uint8Array, ref?: unknown[], credit = 0): Buffer {
  // Copied at once: msgpackr reuses its buffer for the next pack (the header's, below).
  const refBytes = ref ? Buffer.from(pack(ref)) : undefined;
  // An empty header is H = 0 (a flat header's 1 byte, an empty map, is not sent).
  const flatHeader = packFlatHeader(header, headerScratch);
  const packedHeader = flatHeader < 0 ? pack(header) : undefined;
  const asciiTag = asciiLength(tag);
  const tagBytes = asciiTag >= 0 ? asciiTag : Buffer.byteLength(tag);
  const headerBytes = packedHeader?.byteLength ?? (flatHeader > 1 ? flatHeader : 0);
  const creditBytes = credit > 0 ? CREDIT_BYTES : 0;
  const metaLength = DATA_FIXED + creditBytes + tagBytes + headerBytes + (refBytes?.byteLength ?? 0);
  const offset = align8(PREFIX + metaLength);
  const message = Buffer.allocUnsafe(offset + payload.byteLength);
  message.writeUInt32LE(WireKind.Data, 0);
  message.writeUInt32LE(metaLength, 4);
  message.writeUInt16LE(tagBytes, PREFIX);
  message[PREFIX + 2] = (creditBytes ? HAS_CREDIT : 0) | (refBytes ? HAS_REF : 0);
  message[PREFIX + 3] = 0;
  message.writeUInt32LE(headerBytes, PREFIX + 4);
  let at = PREFIX + DATA_FIXED;
  if (creditBytes) at = message.writeDoubleLE(credit, at);
  if (asciiTag >= 0) writeAscii(message, at, tag);
  else message.write(tag, at, tagBytes, 'utf8');
  at += tagBytes;
  if (packedHeader) message.set(packedHeader, at);
  else for (let i = 0; i < headerBytes; i += 1) message[at + i] = headerScratch[i]!;
  at += headerBytes;
  if (refBytes) message.set(refBytes, at);
  for (at += refBytes?.byteLength ?? 0; at < offset; at += 1) message[at] = 0;
  message.set(payload, offset);
  return message;
}

/** The first of the two messages of a big frame; send `byteLength` payload bytes as the next message. */
export function encodeDataHead(tag: string, header: FrameHeader, byteLength: number): Buffer {
  return encode(WireKind.DataHead, [tag, header, byteLength]);
}

export function encodeCredit(bytes: number): Buffer {
  return encode(WireKind.Credit, bytes);
}

export function encodeControl(control: Record<string, unknown>): Buffer {
  return encode(WireKind.Control, control);
}

function encode(kind: WireKind, meta: unknown): Buffer {
  const packed = pack(meta);
  const offset = align8(PREFIX + packed.byteLength);
  const message = Buffer.allocUnsafe(offset);
  message.writeUInt32LE(kind, 0);
  message.writeUInt32LE(packed.byteLength, 4);
  packed.copy(message, PREFIX);
  message.fill(0, PREFIX + packed.byteLength, offset);
  return message;
}

/** Parse one message; anything malformed is ERR_BAD_FRAME. The payload is a view of `message` (copied only if misaligned). */
export function decodeMessage(message: Buffer): WireMessage {
  if (message.byteLength < PREFIX) throw badFrame(`message of ${message.byteLength} bytes is shorter than the prefix`);
  const kind = message.readUInt32LE(0);
  const metaLength = message.readUInt32LE(4);
  if (PREFIX + metaLength > message.byteLength) throw badFrame(`meta length ${metaLength} runs past the message`);
  if (kind === WireKind.Data) return decodeData(message, metaLength);
  const meta = unpackMeta(message, PREFIX, PREFIX + metaLength, 'meta');
  switch (kind) {
    case WireKind.DataHead: {
      const parts = Array.isArray(meta) ? (meta as unknown[]) : [];
      const [tag, header, byteLength] = parts;
      if (parts.length !== 3 || typeof tag !== 'string' || !isPlainObject(header) || !Number.isSafeInteger(byteLength) || (byteLength as number) < 0) {
        throw badFrame('data head meta must be [tag, header, byteLength]');
      }
      return { kind, tag, header, byteLength: byteLength as number };
    }
    case WireKind.Credit:
      if (typeof meta !== 'number' || !(meta >= 0)) throw badFrame('credit meta must be a non-negative number');
      return { kind, bytes: meta };
    case WireKind.Control:
      if (!isPlainObject(meta)) throw badFrame('control meta must be an object');
      return { kind, control: meta };
    default:
      throw badFrame(`unknown message kind ${kind}`);
  }
}

function decodeData(message: Buffer, metaLength: number): WireMessage {
  if (metaLength < DATA_FIXED) throw badFrame(`data meta of ${metaLength} bytes is shorter than its fixed part`);
  const tagBytes = message.readUInt16LE(PREFIX);
  const flags = message[PREFIX + 2]!;
  const headerBytes = message.readUInt32LE(PREFIX + 4);
  const creditBytes = flags & HAS_CREDIT ? CREDIT_BYTES : 0;
  const tagAt = PREFIX + DATA_FIXED + creditBytes;
  const headerAt = tagAt + tagBytes;
  const end = PREFIX + metaLength;
  if ((flags & ~(HAS_CREDIT | HAS_REF)) !== 0 || message[PREFIX + 3] !== 0) throw badFrame(`data meta has unknown flags ${flags}`);
  if (headerAt + headerBytes > end || (!(flags & HAS_REF) && headerAt + headerBytes !== end)) throw badFrame('data meta lengths do not add up');
  const credit = creditBytes ? message.readDoubleLE(PREFIX + DATA_FIXED) : 0;
  if (creditBytes && !(credit > 0 && Number.isSafeInteger(credit))) throw badFrame('credit must be a positive integer');
  const header = headerBytes ? unpackMeta(message, headerAt, headerAt + headerBytes, 'header') : {};
  if (!isPlainObject(header)) throw badFrame('data header must be an object');
  const ref = flags & HAS_REF ? unpackMeta(message, headerAt + headerBytes, end, 'ref') : undefined;
  if (flags & HAS_REF && !Array.isArray(ref)) throw badFrame('data ref must be an array');
  if (align8(end) > message.byteLength) throw badFrame('data meta runs into the payload alignment past the message');
  const payload = aligned(message.subarray(align8(end)));
  // Every field always present: one object shape for every DATA message its readers see.
  const tag = readTag(message, tagAt, headerAt);
  return { kind: WireKind.Data, tag, header, payload, ref: ref as unknown[] | undefined, credit: creditBytes ? credit : undefined };
}

function unpackMeta(bytes: Uint8Array, start: number, end: number, what: string): unknown {
  try {
    return unpackField(bytes, start, end);
  } catch (error) {
    throw badFrame(`${what} is not msgpack (${(error as Error).message})`);
  }
}

/** The payload message that follows a DATA_HEAD, checked against the length the head declared. */
export function decodePayload(message: Buffer, byteLength: number): Uint8Array {
  if (message.byteLength !== byteLength) throw badFrame(`payload of ${message.byteLength} bytes follows a head that declared ${byteLength}`);
  return aligned(message);
}

/** Payloads start on an 8-byte boundary so callers can view them as any typed array; a rare misaligned view is copied. */
function aligned(payload: Uint8Array): Uint8Array {
  return payload.byteOffset % 8 === 0 ? payload : payload.slice();
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function badFrame(message: string): SeqparError {
  return new SeqparError('ERR_BAD_FRAME', message);
}
