import { SeqparError } from '@seqpar/core';
import type { FrameHeader } from './transport.js';
import { decodePayload } from './wire-frame.js';

/**
 * The most of a big payload one ws message carries. ws joins a message's socket reads into one buffer in one
 * synchronous step, so a 64 MiB KV block sent whole was held twice by its receiver (the reads and the joined copy)
 * and took its event loop for 0.6-1.2 s under load, long enough to miss heartbeats. In parts, the receiver copies
 * each into the frame's buffer as it comes.
 */
export const PAYLOAD_PART_BYTES = 4 * 2 ** 20;

/** Views of `payload`, at most PAYLOAD_PART_BYTES each, in order. */
export function payloadParts(payload: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (let at = 0; at < payload.byteLength; at += PAYLOAD_PART_BYTES) parts.push(payload.subarray(at, Math.min(payload.byteLength, at + PAYLOAD_PART_BYTES)));
  return parts;
}

/** The payload a DATA_HEAD announced, gathered from the messages that follow it. */
export class PayloadAssembly {
  private buffer: Buffer | undefined;
  private filled = 0;

  constructor(
    readonly tag: string,
    readonly header: FrameHeader,
    readonly byteLength: number,
  ) {}

  /** Takes the next part; returns the whole payload once the last one is in. A payload in one part is used as is. */
  add(part: Buffer): Uint8Array | undefined {
    // Every part but the last is a full one, so a part of any other size is a bad frame, not a wait for more.
    const due = Math.min(PAYLOAD_PART_BYTES, this.byteLength - this.filled);
    if (part.byteLength !== due) {
      throw new SeqparError('ERR_BAD_FRAME', `a payload part of ${part.byteLength} bytes where ${due} were due (${this.filled} of the ${this.byteLength} its head declared in)`);
    }
    if (due === this.byteLength) return decodePayload(part, this.byteLength);
    this.buffer ??= Buffer.allocUnsafeSlow(this.byteLength);
    part.copy(this.buffer, this.filled);
    this.filled += part.byteLength;
    return this.filled === this.byteLength ? this.buffer : undefined;
  }
}
