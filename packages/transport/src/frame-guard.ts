import { crc32 } from 'node:zlib';
import { SeqparError, UsageError } from '@seqpar/core';
import type { Frame, FrameHeader } from './transport.js';

/**
 * End-to-end frame integrity, kept in the frame header so no transport's wire format changes: the sender stamps
 * `[seq, crc]` under {@link GUARD_KEY}, where `seq` counts its frames to that peer (0, 1, 2, ...) and `crc` is the
 * CRC32 of the payload; the receiver checks both as the frame arrives and strips the key.
 *
 * A CRC mismatch is ERR_CORRUPT_FRAME. A sequence number seen before is ERR_FRAME_SEQUENCE: a duplicated frame
 * would otherwise be taken as the next one on its tag and silently change a result. Frames of different tags
 * may legally overtake each other (shm sends wait for ring slots), so arrivals are tracked as a window, not a
 * strict order; a lost frame shows as a receive that times out. The receiver checks whatever carries a stamp,
 * so only senders need the option. Costs one CRC pass per send and per arrival (~4 GB/s here): off by default.
 */
export const GUARD_KEY = '~seqpar-guard';

/** Out-of-order arrivals one peer may have outstanding before the gap is treated as a lost frame. */
const MAX_AHEAD = 4096;

export class FrameGuard {
  private readonly nextSeq = new Map<number, number>();
  private readonly windows = new Map<number, SeqWindow>();

  /** The header to transmit: `header` plus this frame's stamp. `payload` must be final (not corrupted yet). */
  stamp(to: number, header: FrameHeader, payload: Uint8Array): FrameHeader {
    const seq = this.nextSeq.get(to) ?? 0;
    this.nextSeq.set(to, seq + 1);
    return { ...header, [GUARD_KEY]: [seq, crc32(payload)] };
  }

  /** The frame as the caller should see it (stamp removed), or throws if it fails its checks. */
  admit(from: number, frame: Frame): Frame {
    const stamp = frame.header[GUARD_KEY];
    if (stamp === undefined) return frame;
    const [seq, crc] = Array.isArray(stamp) ? (stamp as unknown[]) : [];
    if (typeof seq !== 'number' || typeof crc !== 'number') {
      throw new SeqparError('ERR_BAD_FRAME', `frame '${frame.tag}' from rank ${from} has a malformed integrity stamp`);
    }
    const actual = crc32(frame.payload);
    if (actual !== crc) {
      throw new SeqparError(
        'ERR_CORRUPT_FRAME',
        `frame '${frame.tag}' #${seq} from rank ${from} is corrupt (crc32 ${hex(actual)}, sent ${hex(crc)}, ${frame.payload.byteLength} bytes)`,
      );
    }
    this.window(from).accept(seq, () => `frame '${frame.tag}' from rank ${from}`);
    const { [GUARD_KEY]: _stamp, ...header } = frame.header;
    return { ...frame, header };
  }

  private window(from: number): SeqWindow {
    let window = this.windows.get(from);
    if (!window) this.windows.set(from, (window = new SeqWindow()));
    return window;
  }
}

/** Every sequence number below `next` has arrived; `ahead` holds those that arrived early. */
class SeqWindow {
  private next = 0;
  private readonly ahead = new Set<number>();

  accept(seq: number, what: () => string): void {
    if (seq < this.next || this.ahead.has(seq)) throw new SeqparError('ERR_FRAME_SEQUENCE', `${what()}: #${seq} arrived twice (duplicated frame)`);
    this.ahead.add(seq);
    while (this.ahead.delete(this.next)) this.next += 1;
    if (this.ahead.size > MAX_AHEAD) throw new SeqparError('ERR_FRAME_SEQUENCE', `${what()}: #${this.next} never arrived (lost frame)`);
  }
}

/** Refuses a caller's header that already uses the reserved key (it would be taken for a stamp). */
export function checkHeaderKeys(header: FrameHeader): void {
  if (Object.hasOwn(header, GUARD_KEY)) throw new UsageError(`frame header key '${GUARD_KEY}' is reserved for the transport`);
}

function hex(value: number): string {
  return value.toString(16).padStart(8, '0');
}
