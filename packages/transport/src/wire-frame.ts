import { SeqparError } from '@seqpar/core';
import { pack, unpack } from 'msgpackr';
import type { FrameHeader } from './transport.js';

/**
 * WebSocket binary messages; only the small meta part is msgpack. A small frame is one message with its payload
 * copied in raw, starting on an 8-byte boundary so a receiver can view it as Float32Array/Float64Array directly.
 *
 *   0      1    4             8                8+H       align8(8+H)
 *   +------+----+-------------+----------------+---------+------------------+
 *   | kind | 0  | H (u32 LE)  | msgpack meta   | 0 pad   | payload bytes    |
 *   +------+----+-------------+----------------+---------+------------------+
 *   kind 1 DATA: meta [tag, header, ref?, credit?]  (ref: transport-private, e.g. an shm slot, or null when only
 *          credit follows; credit: bytes the sender's caller consumed from the receiver, returned on the way)
 *   kind 2 CREDIT: meta bytes consumed
 *   kind 3 CONTROL: meta transport-private object (shm slot release)
 *   kind 4 DATA_HEAD: meta [tag, header, byteLength], no payload bytes; the NEXT message on the connection is
 *          the payload, exactly byteLength raw bytes without any prefix.
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

export function encodeData(tag: string, header: FrameHeader, payload: Uint8Array, ref?: unknown[], credit = 0): Buffer {
  const meta = credit > 0 ? [tag, header, ref ?? null, credit] : ref ? [tag, header, ref] : [tag, header];
  return encode(WireKind.Data, meta, payload);
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

function encode(kind: WireKind, meta: unknown, payload?: Uint8Array): Buffer {
  const packed = pack(meta);
  const offset = align8(PREFIX + packed.byteLength);
  const message = Buffer.allocUnsafe(offset + (payload?.byteLength ?? 0));
  message.writeUInt32LE(kind, 0);
  message.writeUInt32LE(packed.byteLength, 4);
  packed.copy(message, PREFIX);
  message.fill(0, PREFIX + packed.byteLength, offset);
  if (payload) message.set(payload, offset);
  return message;
}

/** Parse one message; anything malformed is ERR_BAD_FRAME. The payload is a view of `message` (copied only if misaligned). */
export function decodeMessage(message: Buffer): WireMessage {
  if (message.byteLength < PREFIX) throw badFrame(`message of ${message.byteLength} bytes is shorter than the prefix`);
  const kind = message.readUInt32LE(0);
  const metaLength = message.readUInt32LE(4);
  if (PREFIX + metaLength > message.byteLength) throw badFrame(`meta length ${metaLength} runs past the message`);
  let meta: unknown;
  try {
    meta = unpack(message.subarray(PREFIX, PREFIX + metaLength));
  } catch (error) {
    throw badFrame(`meta is not msgpack (${(error as Error).message})`);
  }
  switch (kind) {
    case WireKind.Data: {
      const offset = align8(PREFIX + metaLength);
      const parts = Array.isArray(meta) ? (meta as unknown[]) : [];
      const [tag, header, ref, credit] = parts;
      const refOk = parts.length === 2 || Array.isArray(ref) || (parts.length === 4 && ref === null);
      const creditOk = parts.length < 4 || (typeof credit === 'number' && credit > 0);
      if (parts.length > 4 || !refOk || !creditOk || typeof tag !== 'string' || !isPlainObject(header) || offset > message.byteLength) {
        throw badFrame('data meta must be [tag, header, ref?, credit?]');
      }
      return {
        kind,
        tag,
        header,
        payload: aligned(message.subarray(offset)),
        ...(Array.isArray(ref) ? { ref } : {}),
        ...(parts.length === 4 ? { credit: credit as number } : {}),
      };
    }
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
