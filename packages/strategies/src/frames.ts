import { bytesOf, epochNow, SeqparError, type Tensor } from '@seqpar/core';
import type { Frame } from '@seqpar/transport';
import type { RankContext } from './rank-context.js';

/** A float32 view of a received payload, copying once only when the bytes are not 4-byte aligned. */
export function floatsOf(payload: Uint8Array): Float32Array {
  if (payload.byteOffset % 4 === 0) return new Float32Array(payload.buffer, payload.byteOffset, payload.byteLength / 4);
  return new Float32Array(new Uint8Array(payload).buffer); // a real copy, even when payload is a Buffer
}

/**
 * K and V of one block travel together as one frame: [2, Sk, Hkv, D] floats, K first. A rank packs its own block
 * once (or not at all when they are adjacent in memory) and then forwards received payloads untouched.
 */
export interface KvBlock {
  readonly k: Tensor;
  readonly v: Tensor;
  readonly packed: Float32Array;
}

export function packKv(k: Tensor, v: Tensor): KvBlock {
  // A worker's k and v arrive back to back in one request payload: then they already are the frame, no copy.
  if (v.data.buffer === k.data.buffer && v.data.byteOffset === k.data.byteOffset + k.data.byteLength && v.data.length === k.data.length) {
    return unpackKv(new Float32Array(k.data.buffer, k.data.byteOffset, k.data.length * 2), k.shape[0]!, k.shape[1]!, k.shape[2]!);
  }
  const packed = new Float32Array(k.data.length * 2);
  packed.set(k.data, 0);
  packed.set(v.data, k.data.length);
  return unpackKv(packed, k.shape[0]!, k.shape[1]!, k.shape[2]!);
}

export function unpackKv(packed: Float32Array, rows: number, heads: number, dim: number): KvBlock {
  const half = rows * heads * dim;
  if (packed.length !== half * 2) {
    throw new SeqparError('ERR_BAD_FRAME', `KV frame holds ${packed.length} floats, expected ${half * 2} for ${rows} rows`);
  }
  const shape = [rows, heads, dim];
  return { k: { data: packed.subarray(0, half), shape }, v: { data: packed.subarray(half), shape }, packed };
}

/**
 * Starts sending a tensor-bearing frame. The transfer overlaps compute, so it is traced but not charged: the
 * caller charges only the time it later waits on it (see `waitComm`).
 */
export function postFrame(ctx: RankContext, to: number, tag: string, header: Record<string, unknown>, values: Float32Array): Promise<void> {
  const fullTag = ctx.tagPrefix + tag;
  return traced(ctx, 'send', `send ${tag} → ${to}`, `${fullTag}:${ctx.rank}->${to}`, values.byteLength, () =>
    ctx.transport.send(to, fullTag, header, bytesOf(values), { signal: ctx.signal }),
  );
}

/** Starts receiving a frame; like `postFrame`, traced but not charged. */
export function fetchFrame(ctx: RankContext, from: number, tag: string): Promise<Frame> {
  const fullTag = ctx.tagPrefix + tag;
  return traced(ctx, 'recv', `recv ${tag} ← ${from}`, `${fullTag}:${from}->${ctx.rank}`, undefined, () =>
    ctx.transport.recv(from, fullTag, { timeoutMs: ctx.timeoutMs, signal: ctx.signal }),
  );
}

/** Waits for communication that compute did not hide, charging the wait to the rank's communication time. */
export function waitComm<T>(ctx: RankContext, what: string, pending: Promise<T>): Promise<T> {
  return ctx.recorder.time('recv', `wait ${what}`, () => pending);
}

function traced<T>(ctx: RankContext, track: 'send' | 'recv', name: string, flowId: string, bytes: number | undefined, io: () => Promise<T>): Promise<T> {
  const startMs = epochNow();
  const pending = io().then((result) => {
    ctx.recorder.mark({ name, track, startMs, durationMs: epochNow() - startMs, flowId, ...(bytes === undefined ? {} : { args: { bytes } }) });
    return result;
  });
  // Awaited later (after the overlapping compute); a failure meanwhile must not count as unhandled.
  pending.catch(() => undefined);
  return pending;
}

export function headerNumber(frame: Frame, key: string): number {
  const value = frame.header[key];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new SeqparError('ERR_BAD_FRAME', `frame ${frame.tag} lacks a valid '${key}' header`);
  }
  return value;
}
