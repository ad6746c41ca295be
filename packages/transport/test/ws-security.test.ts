import { randomBytes } from 'node:crypto';
import { pack } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { PAYLOAD_PART_BYTES, payloadParts } from '../src/payload-parts.js';
import { joinRendezvous, startRendezvous, type RendezvousServer } from '../src/rendezvous.js';
import type { Transport } from '../src/transport.js';
import { encodeData, encodeDataHead } from '../src/wire-frame.js';
import { connectWithRetry } from '../src/ws-connect.js';
import { AUTH_FAILED_CLOSE_CODE, dialHandshake } from '../src/ws-handshake.js';
import { createWsTransport } from '../src/ws-transport.js';

// World of 3: rank 0 (listener under test) and rank 1 are real transports; "rank 2" is a raw ws client we drive.
const token = 'the-shared-secret';
const maxPayload = 1 << 20;
let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanup.map((step) => step()));
  cleanup = [];
});

async function groupWithRawRank2(payloadLimit = maxPayload): Promise<{ rank0: Transport; rank1: Transport; raw: WebSocket[]; addresses: string[]; rendezvous: RendezvousServer }> {
  const rendezvous = await startRendezvous({ worldSize: 3, token });
  const options = { worldSize: 3, token, rendezvous: rendezvous.address, maxPayload: payloadLimit, connectTimeoutMs: 10_000 };
  const opening = [createWsTransport({ ...options, rank: 0 }), createWsTransport({ ...options, rank: 1 })];
  const addresses = await joinRendezvous({ ...options, rank: 2, address: '127.0.0.1:1', timeoutMs: 10_000 });
  const raw = await Promise.all(
    addresses.slice(0, 2).map(async (address) => {
      const ws = await connectWithRetry(address, Date.now() + 5000);
      await dialHandshake(ws, token, 2);
      return ws;
    }),
  );
  const [rank0, rank1] = await Promise.all(opening);
  cleanup.push(async () => {
    raw.forEach((ws) => ws.terminate());
    await Promise.all([rank0!.close(), rank1!.close(), rendezvous.close()]);
  });
  return { rank0: rank0!, rank1: rank1!, raw, addresses, rendezvous };
}

async function roundTrip(a: Transport, b: Transport, tag: string): Promise<void> {
  await a.send(b.rank, tag, { ok: true }, new Uint8Array([1, 2, 3]));
  const frame = await b.recv(a.rank, tag, { timeoutMs: 5000 });
  expect([...frame.payload]).toEqual([1, 2, 3]);
}

function closeCode(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

describe('ws transport security and bad input', () => {
  it('rejects a wrong token and delivers nothing from that connection', async () => {
    const { rank0, rank1, addresses } = await groupWithRawRank2();
    const intruder = await connectWithRetry(addresses[0]!, Date.now() + 5000);
    const closed = closeCode(intruder);
    await expect(dialHandshake(intruder, 'wrong-token', 2)).rejects.toMatchObject({ code: 'ERR_AUTH' });
    intruder.send(encodeData('bogus', {}, new Uint8Array(8)));
    const silent = await connectWithRetry(addresses[0]!, Date.now() + 5000);
    const silentClosed = closeCode(silent);
    silent.send(encodeData('bogus', {}, new Uint8Array(8)));
    expect(await silentClosed).toBe(AUTH_FAILED_CLOSE_CODE);
    intruder.terminate();
    await closed;
    await expect(rank0.recv(2, 'bogus', { timeoutMs: 200 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(rank0.stats().framesRecv).toBe(0);
    await roundTrip(rank1, rank0, 'still-serving');
  });

  it('a transport with the wrong token fails with ERR_AUTH', async () => {
    const rendezvous = await startRendezvous({ worldSize: 1, token });
    cleanup.push(() => rendezvous.close());
    await expect(createWsTransport({ rank: 0, worldSize: 1, token: 'nope', rendezvous: rendezvous.address, connectTimeoutMs: 3000 })).rejects.toMatchObject({ code: 'ERR_AUTH' });
  });

  it('drops an oversize frame with ERR_FRAME_TOO_LARGE and keeps serving others', async () => {
    const { rank0, rank1, raw } = await groupWithRawRank2();
    await expect(rank1.send(0, 'big', {}, new Uint8Array(maxPayload + 1))).rejects.toMatchObject({ code: 'ERR_FRAME_TOO_LARGE' });
    raw[0]!.send(encodeData('big', {}, new Uint8Array(maxPayload + 128 * 1024)));
    await expect(rank0.recv(2, 'big', { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'ERR_FRAME_TOO_LARGE' });
    await roundTrip(rank1, rank0, 'after-oversize');
  });

  it('drops a data head announcing more than maxPayload with ERR_FRAME_TOO_LARGE and keeps serving others', async () => {
    const { rank0, rank1, raw } = await groupWithRawRank2();
    raw[0]!.send(encodeDataHead('big', {}, maxPayload + 1));
    await expect(rank0.recv(2, 'big', { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'ERR_FRAME_TOO_LARGE' });
    await closeCode(raw[0]!);
    await roundTrip(rank1, rank0, 'after-announced-oversize');
  });

  it('moves a big payload behind its data head', async () => {
    const { rank0, raw } = await groupWithRawRank2();
    const payload = randomBytes(100_000);
    raw[0]!.send(encodeDataHead('split', { n: 1 }, payload.byteLength));
    raw[0]!.send(payload);
    const frame = await rank0.recv(2, 'split', { timeoutMs: 5000 });
    expect(frame.header).toEqual({ n: 1 });
    expect(Buffer.from(frame.payload).equals(payload)).toBe(true);
    expect(frame.payload.byteOffset % 8).toBe(0);
  });

  it('gathers a payload sent in parts behind its data head', async () => {
    const { rank0, raw } = await groupWithRawRank2(4 * PAYLOAD_PART_BYTES);
    const payload = randomBytes(2 * PAYLOAD_PART_BYTES + 1000);
    raw[0]!.send(encodeDataHead('parts', { n: 3 }, payload.byteLength));
    for (const part of payloadParts(payload)) raw[0]!.send(part);
    const frame = await rank0.recv(2, 'parts', { timeoutMs: 5000 });
    expect(Buffer.from(frame.payload).equals(payload)).toBe(true);
    expect(frame.payload.byteOffset % 8).toBe(0);
  });

  it('closes the connection on a payload part of the wrong size with ERR_BAD_FRAME and keeps serving others', async () => {
    const { rank0, rank1, raw } = await groupWithRawRank2(4 * PAYLOAD_PART_BYTES);
    raw[0]!.send(encodeDataHead('t', {}, PAYLOAD_PART_BYTES + 1000));
    raw[0]!.send(randomBytes(1000)); // a first part must be a full one
    await expect(rank0.recv(2, 't', { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'ERR_BAD_FRAME' });
    await closeCode(raw[0]!);
    await roundTrip(rank1, rank0, 'after-short-part');
  });

  it.each([
    ['garbage', [randomBytes(64)]],
    ['truncated', [encodeData('t', { a: 1 }, new Uint8Array(16)).subarray(0, 12)]],
    ['malformed data head', [encodeDataHead('t', { a: 1 }, -1)]],
    ['short payload after a data head', [encodeDataHead('t', {}, 1000), randomBytes(999)]],
    ['long payload after a data head', [encodeDataHead('t', {}, 1000), randomBytes(1001)]],
  ])('closes the connection on a %s with ERR_BAD_FRAME and keeps serving others', async (_, messages) => {
    const { rank0, rank1, raw } = await groupWithRawRank2();
    for (const message of messages) raw[0]!.send(message);
    await expect(rank0.recv(2, 't', { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'ERR_BAD_FRAME' });
    await closeCode(raw[0]!);
    await roundTrip(rank1, rank0, 'after-garbage');
  });

  it('survives 1000+ random frames from unauthenticated and authenticated clients and delivers nothing bogus', async () => {
    const { rank0, rank1, raw, addresses } = await groupWithRawRank2();
    let sent = 0;
    for (let connection = 0; connection < 20; connection += 1) {
      const ws = await connectWithRetry(addresses[0]!, Date.now() + 5000);
      const closed = closeCode(ws);
      for (let i = 0; i < 50; i += 1, sent += 1) {
        const kind = i % 3;
        ws.send(kind === 0 ? randomBytes(1 + ((i * 37) % 2000)) : kind === 1 ? pack({ nonce: randomBytes(32), rank: i }) : encodeData(`f${i}`, {}, randomBytes(i)));
      }
      ws.terminate();
      await closed;
    }
    for (let i = 0; i < 20; i += 1, sent += 1) raw[0]!.send(randomBytes(1 + i * 13));
    expect(sent).toBeGreaterThanOrEqual(1000);
    await expect(rank0.recv(2, 'f1', { timeoutMs: 2000 })).rejects.toMatchObject({ code: 'ERR_BAD_FRAME' });
    expect(rank0.stats().framesRecv).toBe(0);
    await roundTrip(rank1, rank0, 'after-fuzz');
    expect(rank0.stats().framesRecv).toBe(1);
  });
});
