import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnPeerProcess, type PeerProcess } from '../src/peer-process.js';
import { startRendezvous, type RendezvousServer } from '../src/rendezvous.js';
import { createShmTransport } from '../src/shm-transport.js';
import type { Transport } from '../src/transport.js';

const MiB = 2 ** 20;
let cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanup.map((step) => step()));
  cleanup = [];
});

async function rendezvousFor(worldSize: number, token: string): Promise<RendezvousServer> {
  const rendezvous = await startRendezvous({ worldSize, token });
  cleanup.push(() => rendezvous.close());
  return rendezvous;
}

/** Segment names in /dev/shm created by one of `pids` (names carry their creator's pid). */
function segmentsOf(pids: (number | undefined)[]): string[] {
  return readdirSync('/dev/shm').filter((name) => pids.some((pid) => name.startsWith(`seqpar-${pid}-`)));
}

describe('shm transport', () => {
  it('keeps FIFO per tag when a send waits for a slot and a later small send on the tag needs none', async () => {
    const token = 'fifo';
    const rendezvous = await rendezvousFor(2, token);
    const options = { worldSize: 2, token, rendezvous: rendezvous.address, slots: 1, slotBytes: MiB, slotWaitMs: 10_000 };
    const [a, b] = await Promise.all([createShmTransport({ ...options, rank: 0 }), createShmTransport({ ...options, rank: 1 })]);
    cleanup.push(() => Promise.all([a!.close(), b!.close()]));
    const sender = a!;
    const receiver: Transport = b!;
    await sender.send(1, 't', { n: 0 }, new Uint8Array(64 * 1024)); // takes the only slot
    const waiting = sender.send(1, 't', { n: 1 }, new Uint8Array(64 * 1024)); // waits for it
    const small = sender.send(1, 't', { n: 2 }, new Uint8Array(16)); // inline, no slot needed
    const order: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      using frame = await receiver.recv(0, 't', { timeoutMs: 5000 });
      order.push(frame.header.n);
    }
    await Promise.all([waiting, small]);
    expect(order).toEqual([0, 1, 2]);
  });

  it('releases a slot once when a frame is disposed and released again', async () => {
    const token = 'dispose';
    const rendezvous = await rendezvousFor(2, token);
    const options = { worldSize: 2, token, rendezvous: rendezvous.address, slots: 1, slotBytes: MiB, slotWaitMs: 5000 };
    const [a, b] = await Promise.all([createShmTransport({ ...options, rank: 0 }), createShmTransport({ ...options, rank: 1 })]);
    cleanup.push(() => Promise.all([a!.close(), b!.close()]));
    for (let i = 0; i < 3; i++) {
      await a!.send(1, 't', { i }, new Uint8Array(MiB).fill(i));
      {
        using frame = await b!.recv(0, 't', { timeoutMs: 5000 });
        expect(frame.payload[0]).toBe(i);
        frame.release?.();
      }
    }
    expect(a!.stats().framesSent).toBe(3);
  });

  it('moves frames between polling ends through shared memory alone: no socket message per frame', async () => {
    const token = 'quiet';
    const rendezvous = await rendezvousFor(2, token);
    // A spin budget longer than the test: neither end sleeps, so nothing needs a wake.
    const options = { worldSize: 2, token, rendezvous: rendezvous.address, slotBytes: MiB, spinUs: 60_000_000 };
    const [a, b] = await Promise.all([createShmTransport({ ...options, rank: 0 }), createShmTransport({ ...options, rank: 1 })]);
    cleanup.push(() => Promise.all([a!.close(), b!.close()]));
    const before = [a!.stats().socketMessages, b!.stats().socketMessages];
    const echo = (async () => {
      for (let i = 0; i < 100; i++) {
        using frame = await b!.recv(0, 'ping', { timeoutMs: 5000 });
        await b!.send(0, 'pong', frame.header, frame.payload);
      }
    })();
    for (let i = 0; i < 100; i++) {
      const payload = new Uint8Array(i % 2 ? 64 : 64 * 1024).fill(i); // inline records and slots
      await a!.send(1, 'ping', { i }, payload);
      using frame = await a!.recv(1, 'pong', { timeoutMs: 5000 });
      expect(frame.header.i).toBe(i);
      expect(frame.payload.byteLength).toBe(payload.byteLength);
      expect(frame.payload[payload.byteLength - 1]).toBe(i);
    }
    await echo;
    expect([a!.stats().socketMessages, b!.stats().socketMessages]).toEqual(before);
  });

  it('wakes a receiver that stopped polling with at most one socket message', async () => {
    const token = 'wake';
    const rendezvous = await rendezvousFor(2, token);
    const options = { worldSize: 2, token, rendezvous: rendezvous.address, slotBytes: MiB, spinUs: 50 };
    const [a, b] = await Promise.all([createShmTransport({ ...options, rank: 0 }), createShmTransport({ ...options, rank: 1 })]);
    cleanup.push(() => Promise.all([a!.close(), b!.close()]));
    const receiving = b!.recv(0, 'late', { timeoutMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 100)); // far past the spin budget: b sleeps
    const before = a!.stats().socketMessages!;
    await a!.send(1, 'late', { n: 7 }, new Uint8Array(8));
    expect((await receiving).header).toEqual({ n: 7 });
    expect(a!.stats().socketMessages! - before).toBeLessThanOrEqual(1);
  });

  it('fails a send that waits for ring space when the receiving process dies', async () => {
    const token = 'full';
    const rendezvous = await rendezvousFor(2, token);
    const options = { worldSize: 2, token, rendezvous: rendezvous.address, slotBytes: MiB, ringBytes: 4096 };
    const peer = spawnPeerProcess('shm', { ...options, rank: 1 });
    cleanup.push(() => peer.kill());
    const local = await createShmTransport({ ...options, rank: 0 });
    cleanup.push(() => local.close());
    await peer.ready;
    peer.child.kill('SIGSTOP'); // it reads nothing any more: the 4 KiB ring fills
    let stuck: Promise<unknown> | undefined;
    for (let i = 0; i < 16 && !stuck; i++) {
      const sending = local.send(1, 'fill', { i }, new Uint8Array(900)).then(() => 'sent');
      const outcome = await Promise.race([sending, new Promise((resolve) => setTimeout(resolve, 200, 'waiting'))]);
      if (outcome === 'waiting') stuck = sending.catch((error: { code: string; message: string }) => error);
    }
    expect(stuck).toBeDefined();
    const killedAt = Date.now();
    peer.child.kill('SIGKILL');
    expect(await stuck).toMatchObject({ code: 'ERR_PEER_LOST', message: expect.stringContaining('rank 1') });
    expect(Date.now() - killedAt).toBeLessThan(3000);
  });

  describe('leaves no segment in /dev/shm', () => {
    const token = 'lifetime';
    async function twoPeerProcesses(): Promise<[PeerProcess, PeerProcess]> {
      const rendezvous = await rendezvousFor(2, token);
      const options = { worldSize: 2, token, rendezvous: rendezvous.address, slotBytes: MiB };
      const peers = [spawnPeerProcess('shm', { ...options, rank: 0 }), spawnPeerProcess('shm', { ...options, rank: 1 })] as const;
      cleanup.push(() => Promise.all(peers.map((peer) => peer.kill())));
      await Promise.all(peers.map((peer) => peer.ready));
      await Promise.all([peers[1].run({ op: 'stream', tag: 'y', count: 3, bytes: MiB / 2, peer: 0 }), peers[0].run({ op: 'drain', tag: 'y', count: 3, peer: 1 })]);
      return [peers[0], peers[1]];
    }

    it('when both processes are killed with SIGKILL, even with a doorbell never read', async () => {
      const [p0, p1] = await twoPeerProcesses();
      const pids = [p0.child.pid, p1.child.pid];
      p1.child.kill('SIGSTOP'); // rank 1 stops reading: rank 0's first frames to it wait in slots, unread
      await p0.run({ op: 'stream', tag: 'z', count: 2, bytes: MiB / 2, peer: 1 });
      expect(segmentsOf(pids)).toEqual([]);
      await Promise.all([p0.kill(), p1.kill()]);
      expect(segmentsOf(pids)).toEqual([]);
    });

    it('after a normal close', async () => {
      const [p0, p1] = await twoPeerProcesses();
      const pids = [p0.child.pid, p1.child.pid];
      await Promise.all([p0.run({ op: 'stream', tag: 'x', count: 3, bytes: MiB / 2, peer: 1 }), p1.run({ op: 'drain', tag: 'x', count: 3, peer: 0 })]);
      await Promise.all([p0.run({ op: 'close' }), p1.run({ op: 'close' })]);
      expect(segmentsOf(pids)).toEqual([]);
    });
  });
});
