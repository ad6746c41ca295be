import type { Transport } from './transport.js';

/**
 * What a conformance peer does on request (the same code drives an in-process endpoint and a child process).
 * Payload bytes follow `patternByte(seq, i)` so the other side can verify content without shipping a copy.
 */
export type PeerCommand =
  | { op: 'echo'; tag: string; count: number; peer?: number }
  | { op: 'stream'; tag: string; count: number; bytes: number; peer?: number }
  | { op: 'drain'; tag: string; count: number; peer?: number }
  | { op: 'close' };

export function patternByte(seq: number, index: number): number {
  return (seq * 31 + index * 7) & 255;
}

export function patternPayload(seq: number, bytes: number): Uint8Array {
  const payload = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 1) payload[i] = patternByte(seq, i);
  return payload;
}

/** Index of the first byte that breaks the pattern, or -1. Checks every 4099th byte plus the ends for big payloads. */
export function patternMismatch(seq: number, payload: Uint8Array): number {
  const step = payload.byteLength > 1 << 20 ? 4099 : 1;
  for (let i = 0; i < payload.byteLength; i += step) if (payload[i] !== patternByte(seq, i)) return i;
  const last = payload.byteLength - 1;
  return last >= 0 && payload[last] !== patternByte(seq, last) ? last : -1;
}

/** Runs one command against `peer` (default rank 0) and returns a small result (for drain: the sequence numbers seen). */
export async function runPeerCommand(transport: Transport, command: PeerCommand): Promise<unknown> {
  const peer = command.op === 'close' ? 0 : (command.peer ?? 0);
  switch (command.op) {
    case 'echo':
      for (let i = 0; i < command.count; i += 1) {
        using frame = await transport.recv(peer, command.tag);
        await transport.send(peer, command.tag, frame.header, frame.payload);
      }
      return command.count;
    case 'stream':
      for (let seq = 0; seq < command.count; seq += 1) {
        await transport.send(peer, command.tag, { seq }, patternPayload(seq, command.bytes));
      }
      return command.count;
    case 'drain': {
      const seen: number[] = [];
      for (let i = 0; i < command.count; i += 1) {
        using frame = await transport.recv(peer, command.tag);
        const seq = frame.header.seq as number;
        seen.push(patternMismatch(seq, frame.payload) === -1 ? seq : -1);
      }
      return seen;
    }
    case 'close':
      await transport.close();
      return true;
  }
}
