import type { DecodeLane } from './decode-lane.js';

/**
 * One point-to-point interface for every way seqpar ranks talk: `inproc` (same process), `ws` (WebSocket,
 * any host) and `shm` (POSIX shared memory between processes on one host). Strategies and the runtime are
 * written against this file only; collectives (collectives.ts) are built on it too.
 *
 * Semantics every implementation keeps (the conformance suite checks them):
 * - Frames are ordered FIFO per (peer, tag). Different tags and different peers are independent.
 * - A frame for a tag nobody waits on yet is queued at the receiver, up to `maxQueuedBytes` per peer; beyond
 *   that the sender's `send` waits for credit (backpressure), so a slow receiver bounds the sender's memory.
 * - `send` resolves once the frame is handed off: the caller may reuse `payload`'s memory afterwards.
 * - `recv` always has a deadline (`timeoutMs`, default {@link DEFAULT_RECV_TIMEOUT_MS}); it rejects with a
 *   SeqparError: ERR_TIMEOUT, ERR_ABORTED (signal), ERR_CLOSED (this end closed), ERR_PEER_LOST (the peer's
 *   process or connection is gone; the message names the rank), ERR_BAD_FRAME / ERR_FRAME_TOO_LARGE (the
 *   peer sent something malformed; that connection is dropped).
 * - The payload a `recv` returns belongs to the caller and stays valid until the caller drops it, or for `shm`
 *   until it releases the frame (`frame.release()`, or the end of a `using frame = await t.recv(...)` scope). It is never
 *   backed by a SharedArrayBuffer (ONNX Runtime rejects those); for `shm` it is POSIX-shm-backed memory that
 *   can be handed to ORT without a copy (see shm-ring.ts for the slot lifetime rule).
 */

/** Small, msgpack-able metadata travelling with a frame (shapes, step numbers, ...). Keep it under a few KiB. */
export type FrameHeader = Record<string, unknown>;

export interface Frame {
  readonly tag: string;
  readonly header: FrameHeader;
  readonly payload: Uint8Array;
  /**
   * Present on `shm` frames whose payload lives in a shared-memory slot: hands the slot back to the sender.
   * Do not touch `payload` afterwards. Optional: an unreleased slot stays the caller's (valid until the
   * process exits) and the sender routes later frames through the socket once its ring has no free slot.
   * Idempotent.
   */
  release?(): void;
  /** Calls `release` when the frame has one, else does nothing: lets a caller scope a frame with `using`. */
  [Symbol.dispose](): void;
}

export interface SendOptions {
  signal?: AbortSignal;
}

export interface RecvOptions {
  /** Reject with ERR_TIMEOUT after this long. Default {@link DEFAULT_RECV_TIMEOUT_MS}; always bounded. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface TransportStats {
  bytesSent: number;
  bytesRecv: number;
  framesSent: number;
  framesRecv: number;
  /** Messages this endpoint wrote to or read from its sockets, control and credit included (ws and shm only). */
  socketMessages?: number;
}

export type TransportKind = 'inproc' | 'ws' | 'shm';

export interface Transport {
  readonly rank: number;
  readonly worldSize: number;
  readonly kind: TransportKind;
  /** Send a frame to rank `to`. Resolves when handed off (payload memory reusable); waits under backpressure. */
  send(to: number, tag: string, header: FrameHeader, payload?: ArrayBufferView, options?: SendOptions): Promise<void>;
  /** Receive the next frame with `tag` from rank `from`, in the order it was sent. */
  recv(from: number, tag: string, options?: RecvOptions): Promise<Frame>;
  /** Payload and frame counters since creation (headers not counted in bytes). */
  stats(): TransportStats;
  /** Close every connection; pending and later calls reject with ERR_CLOSED. Idempotent. */
  close(): Promise<void>;
  /** The decode lane to `peer` (decode-lane.ts): shm only, once the link is up; absent elsewhere. */
  decodeLane?(peer: number): DecodeLane | undefined;
}

export const DEFAULT_RECV_TIMEOUT_MS = 30_000;
/** Bytes a receiver queues per peer for tags nobody waits on yet, before senders wait for credit. */
export const DEFAULT_MAX_QUEUED_BYTES = 256 * 2 ** 20;
/** Largest payload a single frame may carry unless a transport is configured otherwise. */
export const DEFAULT_MAX_PAYLOAD = 1024 * 2 ** 20;
