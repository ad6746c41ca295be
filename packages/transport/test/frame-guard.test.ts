import { afterEach, describe, expect, it } from 'vitest';
import { createTransport } from '../src/create-transport.js';
import { FaultInjector } from '../src/fault-plan.js';
import { FrameGuard, GUARD_KEY } from '../src/frame-guard.js';
import { createInprocGroup } from '../src/inproc-transport.js';
import { startRendezvous } from '../src/rendezvous.js';
import type { LinkConditions } from '../src/transport-base.js';
import type { Frame, Transport, TransportKind } from '../src/transport.js';

describe('FrameGuard', () => {
  const frame = (header: Record<string, unknown>, payload: Uint8Array): Frame => ({ tag: 't', header, payload });

  it('stamps a sequence number and CRC that the receiver checks and strips', () => {
    const sender = new FrameGuard();
    const receiver = new FrameGuard();
    const payload = new Uint8Array([1, 2, 3]);
    const stamped = sender.stamp(1, { a: 1 }, payload);
    expect(stamped[GUARD_KEY]).toEqual([0, expect.any(Number)]);
    expect(receiver.admit(0, frame(stamped, payload)).header).toEqual({ a: 1 });
  });

  it('names the peer and tag of a corrupt frame', () => {
    const stamped = new FrameGuard().stamp(1, {}, new Uint8Array([1, 2, 3]));
    expect(() => new FrameGuard().admit(0, frame(stamped, new Uint8Array([1, 2, 4])))).toThrow(
      expect.objectContaining({ code: 'ERR_CORRUPT_FRAME', message: expect.stringMatching(/frame 't' #0 from rank 0 is corrupt/) }),
    );
  });

  it('accepts frames that overtake each other but refuses a sequence number seen before', () => {
    const sender = new FrameGuard();
    const receiver = new FrameGuard();
    const empty = new Uint8Array(0);
    const [a, b, c] = [0, 1, 2].map(() => sender.stamp(1, {}, empty));
    receiver.admit(0, frame(b!, empty));
    receiver.admit(0, frame(a!, empty));
    expect(() => receiver.admit(0, frame(b!, empty))).toThrow(expect.objectContaining({ code: 'ERR_FRAME_SEQUENCE' }));
    receiver.admit(0, frame(c!, empty));
    expect(() => receiver.admit(0, frame(a!, empty))).toThrow(expect.objectContaining({ code: 'ERR_FRAME_SEQUENCE' }));
  });

  it('passes unstamped frames through untouched', () => {
    const f = frame({ a: 1 }, new Uint8Array(2));
    expect(new FrameGuard().admit(0, f)).toBe(f);
  });
});

/** Two endpoints of `kind` in this process (ws and shm over real sockets and shared memory). */
async function pair(kind: TransportKind, conditions: [LinkConditions, LinkConditions]): Promise<{ t: Transport[]; dispose(): Promise<void> }> {
  if (kind === 'inproc') {
    // One group shares one set of options: the sender's (the receiver checks whatever arrives stamped).
    const t = createInprocGroup(2, conditions[0]);
    return { t, dispose: async () => void (await Promise.all(t.map((x) => x.close()))) };
  }
  const token = `token-${Math.random()}`;
  const rendezvous = await startRendezvous({ worldSize: 2, token });
  const options = { worldSize: 2, token, rendezvous: rendezvous.address };
  const t = await Promise.all([0, 1].map((rank) => createTransport(kind, { ...options, rank, ...conditions[rank] })));
  return { t, dispose: async () => void (await Promise.all([...t.map((x) => x.close()), rendezvous.close()])) };
}

describe.each(['inproc', 'ws', 'shm'] as const)('%s transport with checksums', (kind) => {
  let dispose: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await dispose?.();
    dispose = undefined;
  });

  it('delivers clean frames with the caller header only, and fails a corrupted one with ERR_CORRUPT_FRAME', async () => {
    const faults = new FaultInjector({ faults: [{ kind: 'corrupt', rank: 0, at: 2 }], seed: 3 });
    const opened = await pair(kind, [{ checksum: true, faults }, { checksum: true }]);
    dispose = opened.dispose;
    const [sender, receiver] = opened.t as [Transport, Transport];
    const payload = new Uint8Array(64 * 1024).map((_, i) => i & 0xff);
    await sender.send(1, 'clean', { step: 1 }, payload);
    await sender.send(1, 'dirty', { step: 2 }, payload);
    const clean = await receiver.recv(0, 'clean', { timeoutMs: 2000 });
    expect(clean.header).toEqual({ step: 1 });
    expect(Buffer.from(clean.payload).equals(Buffer.from(payload))).toBe(true);
    clean.release?.();
    await expect(receiver.recv(0, 'dirty', { timeoutMs: 2000 })).rejects.toMatchObject({
      code: 'ERR_CORRUPT_FRAME',
      message: expect.stringMatching(/frame 'dirty' #1 from rank 0 is corrupt/),
    });
    expect([...payload.subarray(0, 4)]).toEqual([0, 1, 2, 3]); // the caller's buffer was not the one corrupted
  });

  it('fails a duplicated frame with ERR_FRAME_SEQUENCE instead of handing it out twice', async () => {
    const faults = new FaultInjector({ faults: [{ kind: 'duplicate', rank: 0, at: 1 }] });
    const opened = await pair(kind, [{ faults }, {}]);
    dispose = opened.dispose;
    const [sender, receiver] = opened.t as [Transport, Transport];
    await sender.send(1, 'x', { n: 1 }, new Uint8Array(32));
    expect((await receiver.recv(0, 'x', { timeoutMs: 2000 })).header).toEqual({ n: 1 });
    await expect(receiver.recv(0, 'x', { timeoutMs: 2000 })).rejects.toMatchObject({ code: 'ERR_FRAME_SEQUENCE' });
  });
});

describe('checksum option', () => {
  it('is off by default: no stamp travels', async () => {
    const t = createInprocGroup(2);
    const seen: Frame[] = [];
    await t[0]!.send(1, 'x', { a: 1 });
    seen.push(await t[1]!.recv(0, 'x'));
    expect(seen[0]!.header).toEqual({ a: 1 });
    await Promise.all(t.map((x) => x.close()));
  });

  it('refuses a caller header that uses the reserved key', async () => {
    const t = createInprocGroup(2, { checksum: true });
    await expect(t[0]!.send(1, 'x', { [GUARD_KEY]: [0, 0] })).rejects.toMatchObject({ code: 'ERR_USAGE' });
    await Promise.all(t.map((x) => x.close()));
  });
});
