import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeData, WireKind } from '../src/wire-frame.js';

const payload = Uint8Array.from([1, 2, 3, 4, 5]);

/** A DATA message whose binary meta is `tag` and `header` bytes after the given fixed fields, however malformed. */
function dataWithMeta({
  flags = 0,
  headerBytes,
  credit,
  header = Buffer.alloc(0),
  rest = Buffer.alloc(0),
}: {
  flags?: number;
  headerBytes?: number;
  credit?: number;
  header?: Uint8Array;
  rest?: Uint8Array;
}): Buffer {
  const tag = Buffer.from('t');
  const fixed = Buffer.alloc(8 + (credit === undefined ? 0 : 8));
  fixed.writeUInt16LE(tag.byteLength, 0);
  fixed[2] = flags;
  fixed.writeUInt32LE(headerBytes ?? header.byteLength, 4);
  if (credit !== undefined) fixed.writeDoubleLE(credit, 8);
  const meta = Buffer.concat([fixed, tag, header, rest]);
  const message = Buffer.alloc((8 + meta.byteLength + 7) & ~7);
  message.writeUInt32LE(WireKind.Data, 0);
  message.writeUInt32LE(meta.byteLength, 4);
  meta.copy(message, 8);
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

  it('round-trips an empty header, a multi-byte tag and credit beyond 32 bits', () => {
    const decoded = decodeMessage(encodeData('kv/τ', {}, payload, undefined, 2 ** 40)) as { tag: string; header: object; credit: number };
    expect([decoded.tag, decoded.header, decoded.credit]).toEqual(['kv/τ', {}, 2 ** 40]);
  });

  it.each([
    { i: 0, big: 127, byte: 128, u32: 2 ** 32 - 1, beyond: 2 ** 32 },
    { small: -1, fix: -32, below: -33, min: -(2 ** 31), under: -(2 ** 31) - 1, half: 1.5, nan: NaN, inf: -Infinity },
    { s: 'abc', empty: '', yes: true, no: false, none: null },
    { notAscii: 'τ', long: 'x'.repeat(40) },
    { nested: { a: [1, 2] }, missing: undefined, bytes: Uint8Array.of(1, 2) },
    Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])),
  ])('round-trips the header %o', (header) => {
    expect((decodeMessage(encodeData('t', header, payload)) as { header: object }).header).toEqual(header);
  });

  it.each([
    ['unknown flags', { flags: 4 }],
    ['zero credit', { flags: 1, credit: 0 }],
    ['fractional credit', { flags: 1, credit: 1.5 }],
    ['a header that is not an object', { header: pack([1, 2]) }],
    ['a truncated header', { header: Uint8Array.of(0x81) }],
    ['a header longer than the meta', { header: pack({ a: 1 }), headerBytes: 64 }],
    ['bytes after the header without a ref', { header: pack({ a: 1 }), rest: pack([1]) }],
    ['a ref that is not an array', { flags: 2, rest: pack({ slot: 1 }) }],
  ])('refuses DATA meta with %s', (_name, meta) => {
    expect(() => decodeMessage(dataWithMeta(meta))).toThrow(expect.objectContaining({ code: 'ERR_BAD_FRAME' }));
  });
});
