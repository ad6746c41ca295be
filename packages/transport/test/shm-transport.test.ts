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
