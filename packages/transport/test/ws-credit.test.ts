import { afterEach, describe, expect, it } from 'vitest';
import { startRendezvous } from '../src/rendezvous.js';
import type { Transport } from '../src/transport.js';
import { createWsTransport } from '../src/ws-transport.js';

let cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanup.map((step) => step()));
  cleanup = [];
});

/** Two ws ranks in this process over real sockets, with a receive window of `maxQueuedBytes`. */
async function wsPair(maxQueuedBytes: number): Promise<[Transport, Transport]> {
  const token = `credit-${Math.random()}`;
  const rendezvous = await startRendezvous({ worldSize: 2, token });
  const options = { worldSize: 2, token, rendezvous: rendezvous.address, maxQueuedBytes };
  const ends = await Promise.all([createWsTransport({ ...options, rank: 0 }), createWsTransport({ ...options, rank: 1 })]);
  cleanup.push(() => Promise.all([...ends.map((end) => end.close()), rendezvous.close()]));
  return ends as [Transport, Transport];
}

describe('ws credit', () => {
  it('returns credit on the frames of a ping-pong: one socket message per frame each way, none for credit', async () => {
    const [a, b] = await wsPair(64 * 1024);
    const echo = (async () => {
      for (let i = 0; i < 200; i++) {
        using frame = await b.recv(0, 'ping');
        await b.send(0, 'pong', frame.header, frame.payload);
      }
    })();
    const before = [a.stats().socketMessages!, b.stats().socketMessages!];
    for (let i = 0; i < 200; i++) {
      await a.send(1, 'ping', { i }, new Uint8Array(1024).fill(i));
      using frame = await a.recv(1, 'pong');
      expect(frame.header.i).toBe(i);
    }
    await echo;
    // 200 frames out and 200 in on each end: a credit message or a linger flush would add to these.
    expect([a.stats().socketMessages! - before[0]!, b.stats().socketMessages! - before[1]!]).toEqual([400, 400]);
  });

  it('hands a waiting sender the credit a receiver holds back, below the batch size and with nothing going back', async () => {
    // Frames cost 384 + 64 bytes: nine fill 4032 of the 4096-byte window, the tenth waits for credit. The receiver
    // takes one (448 bytes, under the 512-byte batch) and then waits for 'go', which the sender sends only after
    // the tenth: without the sender asking for that credit, both would wait for good.
    const [a, b] = await wsPair(4096);
    const sending = (async () => {
      for (let i = 0; i < 10; i++) await a.send(1, 'data', { i }, new Uint8Array(384));
      await a.send(1, 'go', {});
    })();
    const seen: number[] = [];
    {
      using first = await b.recv(0, 'data', { timeoutMs: 5000 });
      seen.push(first.header.i as number);
    }
    (await b.recv(0, 'go', { timeoutMs: 5000 }))[Symbol.dispose]();
    for (let i = 1; i < 10; i++) {
      using frame = await b.recv(0, 'data', { timeoutMs: 5000 });
      seen.push(frame.header.i as number);
    }
    await sending;
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
