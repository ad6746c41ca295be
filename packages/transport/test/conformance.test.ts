import { afterEach, describe, expect, it } from 'vitest';
import { patternMismatch, patternPayload, runPeerCommand, type PeerCommand } from '../src/conformance-commands.js';
import { createTransport } from '../src/create-transport.js';
import { createInprocGroup } from '../src/inproc-transport.js';
import { spawnPeerProcess } from '../src/peer-process.js';
import { startRendezvous } from '../src/rendezvous.js';
import type { Transport, TransportKind } from '../src/transport.js';

// One suite, every transport: rank 0 is this process; rank 1 is a real child process for ws and shm.
interface Pair {
  local: Transport;
  run(command: PeerCommand): Promise<unknown>;
  exitPeer(): void;
  dispose(): Promise<void>;
}

const MiB = 2 ** 20;
const limits = { maxQueuedBytes: 1 * MiB, maxPayload: 128 * MiB, heartbeatMs: 500 };

async function openPair(kind: TransportKind): Promise<Pair> {
  if (kind === 'inproc') {
    const [local, peer] = createInprocGroup(2, limits);
    return {
      local: local!,
      run: (command) => runPeerCommand(peer!, command),
      exitPeer: () => void peer!.close(),
      dispose: async () => void (await Promise.all([local!.close(), peer!.close()])),
    };
  }
  const token = `token-${Math.random()}`;
  const rendezvous = await startRendezvous({ worldSize: 2, token });
  const options = { worldSize: 2, token, rendezvous: rendezvous.address, ...limits };
  const peer = spawnPeerProcess(kind, { ...options, rank: 1 });
  try {
    const local = await createTransport(kind, { ...options, rank: 0 });
    await peer.ready;
    return {
      local,
      run: (command) => peer.run(command),
      exitPeer: () => peer.exitAbruptly(),
      dispose: async () => void (await Promise.all([local.close(), peer.kill(), rendezvous.close()])),
    };
  } catch (error) {
    await Promise.all([peer.kill(), rendezvous.close()]);
    throw error;
  }
}

describe.each(['inproc', 'ws', 'shm'] as const)('%s transport conformance', (kind) => {
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.dispose();
    pair = undefined;
  });

  it('keeps FIFO order per tag across many concurrent tags', async () => {
    pair = await openPair(kind);
    const { local } = pair;
    const tags = Array.from({ length: 24 }, (_, i) => `tag-${i}`);
    const echoes = Promise.all(tags.map((tag) => pair!.run({ op: 'echo', tag, count: 8 })));
    const received = await Promise.all(
      tags.map(async (tag) => {
        const sending = Promise.all(Array.from({ length: 8 }, (_, seq) => local.send(1, tag, { seq }, patternPayload(seq, 100 + seq * 1000))));
        const seqs: number[] = [];
        for (let i = 0; i < 8; i += 1) {
          const frame = await local.recv(1, tag, { timeoutMs: 10_000 });
          expect(patternMismatch(frame.header.seq as number, frame.payload)).toBe(-1);
          seqs.push(frame.header.seq as number);
          frame.release?.();
        }
        await sending;
        return seqs;
      }),
    );
    await echoes;
    for (const seqs of received) expect(seqs).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('moves empty, tiny and 64 MiB frames both ways with their content intact', async () => {
    pair = await openPair(kind);
    const { local } = pair;
    const streamed = pair.run({ op: 'stream', tag: 'big', count: 2, bytes: 64 * MiB });
    for (let seq = 0; seq < 2; seq += 1) {
      const frame = await local.recv(1, 'big', { timeoutMs: 20_000 });
      expect(frame.payload.byteLength).toBe(64 * MiB);
      expect(patternMismatch(seq, frame.payload)).toBe(-1);
    }
    await streamed;
    const drained = pair.run({ op: 'drain', tag: 'up', count: 3 });
    await local.send(1, 'up', { seq: 0 });
    await local.send(1, 'up', { seq: 1 }, patternPayload(1, 1));
    await local.send(1, 'up', { seq: 2 }, patternPayload(2, 64 * MiB));
    expect(await drained).toEqual([0, 1, 2]);
  });

  it('lets the caller reuse a big payload buffer as soon as send resolves', async () => {
    pair = await openPair(kind);
    const { local } = pair;
    const drained = pair.run({ op: 'drain', tag: 'reuse', count: 4 });
    const buffer = new Uint8Array(16 * MiB);
    for (let seq = 0; seq < 4; seq += 1) {
      buffer.set(patternPayload(seq, buffer.byteLength));
      await local.send(1, 'reuse', { seq }, buffer);
    }
    expect(await drained).toEqual([0, 1, 2, 3]);
  });

  it('fails big sends to a peer that exits instead of hanging', async () => {
    pair = await openPair(kind);
    const { local } = pair;
    await local.send(1, 'gone', {}, new Uint8Array(4 * MiB));
    pair.exitPeer();
    const exitedAt = Date.now();
    const error = await (async () => {
      for (;;) await local.send(1, 'gone', {}, new Uint8Array(4 * MiB));
    })().catch((e: { code: string; message: string }) => e);
    expect(['ERR_PEER_LOST', 'ERR_CLOSED']).toContain(error.code);
    expect(error.message).toContain('rank 1');
    expect(Date.now() - exitedAt).toBeLessThan(3000);
  });

  it('applies backpressure: a receiver that does not read bounds what the sender has queued', async () => {
    pair = await openPair(kind);
    const { local } = pair;
    let sent = 0;
    const sending = (async () => {
      for (let seq = 0; seq < 64; seq += 1) {
        await local.send(1, 'bp', { seq }, patternPayload(seq, 64 * 1024));
        sent += 1;
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(sent * 64 * 1024).toBeLessThanOrEqual(limits.maxQueuedBytes + 64 * 1024);
    expect(sent).toBeGreaterThan(0);
    expect(await pair.run({ op: 'drain', tag: 'bp', count: 64 })).toEqual([...Array(64).keys()]);
    await sending;
    expect(sent).toBe(64);
  });

  it('bounds every receive: timeout and abort give typed errors', async () => {
    pair = await openPair(kind);
    const started = Date.now();
    await expect(pair.local.recv(1, 'never', { timeoutMs: 150 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(1000);
    const controller = new AbortController();
    const pending = pair.local.recv(1, 'never', { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  it('reports a peer that exits mid-transfer within 3 s', async () => {
    pair = await openPair(kind);
    const { local } = pair;
    void pair.run({ op: 'stream', tag: 'mid', count: 10_000, bytes: 256 * 1024 }).catch(() => {});
    await local.recv(1, 'mid', { timeoutMs: 10_000 });
    pair.exitPeer();
    const exitedAt = Date.now();
    const error = await (async () => {
      for (;;) await local.recv(1, 'mid', { timeoutMs: 5_000 });
    })().catch((e: { code: string; message: string }) => e);
    expect(['ERR_PEER_LOST', 'ERR_CLOSED']).toContain(error.code);
    expect(error.message).toContain('rank 1');
    expect(Date.now() - exitedAt).toBeLessThan(3000);
  });

  it('closes (later calls fail with ERR_CLOSED) and a new group opens afterwards', async () => {
    pair = await openPair(kind);
    await pair.dispose();
    await expect(pair.local.recv(1, 'x')).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await expect(pair.local.send(1, 'x', {})).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    pair = await openPair(kind);
    const echoed = pair.run({ op: 'echo', tag: 'again', count: 1 });
    await pair.local.send(1, 'again', { seq: 5 }, patternPayload(5, 4096));
    const frame = await pair.local.recv(1, 'again', { timeoutMs: 10_000 });
    expect(frame.header).toEqual({ seq: 5 });
    expect(patternMismatch(5, frame.payload)).toBe(-1);
    await echoed;
  });
});
