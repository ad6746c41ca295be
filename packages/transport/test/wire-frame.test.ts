import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeData, WireKind } from '../src/wire-frame.js';

const payload = Uint8Array.from([1, 2, 3, 4, 5]);

/** A DATA message with `meta` as its msgpack part and no payload, however malformed. */
function dataWithMeta(meta: unknown): Buffer {
  const packed = pack(meta);
  const message = Buffer.alloc((8 + packed.byteLength + 7) & ~7);
  message.writeUInt32LE(WireKind.Data, 0);
  message.writeUInt32LE(packed.byteLength, 4);
  packed.copy(message, 8);
  return message;
}

describe('wire frames', () => {
  it.each([
    ['no ref, no credit', undefined, 0],
    ['a ref', [3, 5], 0],
    ['credit riding without a ref', undefined, 4160],
    ['a ref and credit', [], 64],
  ])('round-trips a DATA frame with %s', (_name, ref, credit) => {
    const { payload: received, ...decoded } = decodeMessage(encodeData('t', { n: 1 }, payload, ref, credit)) as { payload: Uint8Array };
    expect(decoded).toEqual({ kind: WireKind.Data, tag: 't', header: { n: 1 }, ...(ref ? { ref } : {}), ...(credit ? { credit } : {}) });
    expect(Uint8Array.from(received)).toEqual(payload);
  });

  it.each([
    ['a fifth element', ['t', {}, null, 64, 1]],
    ['a null ref without credit', ['t', {}, null]],
    ['zero credit', ['t', {}, null, 0]],
    ['credit that is not a number', ['t', {}, [], '64']],
  ])('refuses DATA meta with %s', (_name, meta) => {
    expect(() => decodeMessage(dataWithMeta(meta))).toThrow(expect.objectContaining({ code: 'ERR_BAD_FRAME' }));
  });
});
