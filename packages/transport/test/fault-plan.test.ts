import { afterEach, describe, expect, it } from 'vitest';
import { checkFaultPlan, FaultInjector, type Fault } from '../src/fault-plan.js';
import { createInprocGroup } from '../src/inproc-transport.js';
import type { Transport } from '../src/transport.js';

let group: Transport[] = [];
afterEach(async () => {
  await Promise.all(group.map((t) => t.close()));
  group = [];
});

function open(n: number, ...faults: Fault[]): { t: Transport[]; injector: FaultInjector } {
  const injector = new FaultInjector({ faults, seed: 11 });
  group = createInprocGroup(n, { faults: injector });
  return { t: group, injector };
}

async function sendNumbered(t: Transport, to: number, count: number, tag = 'x'): Promise<void> {
  for (let i = 1; i <= count; i++) await t.send(to, tag, { i }, new Uint8Array([i]));
}

describe('fault injection', () => {
  it('drops exactly the k-th send: the others arrive, a receive of the lost one times out', async () => {
    const { t, injector } = open(2, { kind: 'drop', rank: 0, at: 2 });
    await sendNumbered(t[0]!, 1, 1, 'a');
    await sendNumbered(t[0]!, 1, 1, 'b');
    await sendNumbered(t[0]!, 1, 1, 'c');
    expect((await t[1]!.recv(0, 'a')).header.i).toBe(1);
    expect((await t[1]!.recv(0, 'c')).header.i).toBe(1);
    await expect(t[1]!.recv(0, 'b', { timeoutMs: 50 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT', message: expect.stringMatching(/'b' from rank 0/) });
    expect(injector.fired).toEqual([{ fault: { kind: 'drop', rank: 0, at: 2 }, rank: 0, to: 1 }]);
  });

  it('counts only sends to `to` when a fault names one', async () => {
    const { t } = open(3, { kind: 'drop', rank: 0, at: 1, to: 2 });
    await t[0]!.send(1, 'x', {});
    await t[0]!.send(2, 'x', {});
    await t[1]!.recv(0, 'x', { timeoutMs: 500 });
    await expect(t[2]!.recv(0, 'x', { timeoutMs: 50 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
  });

  it('delays one frame and the frames behind it on the same link', async () => {
    const { t } = open(2, { kind: 'delay', rank: 0, at: 1, ms: 60 });
    const start = performance.now();
    await sendNumbered(t[0]!, 1, 2);
    for (const i of [1, 2]) expect((await t[1]!.recv(0, 'x')).header.i).toBe(i);
    expect(performance.now() - start).toBeGreaterThanOrEqual(59);
  });

  it('stalls every send of the rank for the given time', async () => {
    const { t } = open(3, { kind: 'stall', rank: 0, at: 1, ms: 60 });
    const start = performance.now();
    await t[0]!.send(1, 'x', {});
    await t[0]!.send(2, 'x', {});
    expect(performance.now() - start).toBeGreaterThanOrEqual(59);
    await t[1]!.send(2, 'y', {}); // other ranks are not stalled
    await t[2]!.recv(1, 'y', { timeoutMs: 20 });
  });

  it('kills an in-process rank at its k-th send: its transport dies and peers learn it was lost', async () => {
    const { t } = open(2, { kind: 'kill', rank: 1, at: 2 });
    await t[1]!.send(0, 'x', {});
    await expect(t[1]!.send(0, 'x', {})).rejects.toMatchObject({ code: 'ERR_CLOSED', message: expect.stringMatching(/rank 1 was killed/) });
    expect((await t[0]!.recv(1, 'x')).tag).toBe('x'); // the frame sent before death still arrives
    await expect(t[0]!.recv(1, 'x', { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'ERR_PEER_LOST', message: expect.stringMatching(/rank 1/) });
  });

  it('runs onKill instead when given (a worker process exits there)', async () => {
    const killed: number[] = [];
    const injector = new FaultInjector({ faults: [{ kind: 'kill', rank: 0, at: 1 }] }, { onKill: (rank) => killed.push(rank) });
    group = createInprocGroup(2, { faults: injector });
    await expect(group[0]!.send(1, 'x', {})).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    expect(killed).toEqual([0]);
  });

  it('partitions two ranks both ways from the k-th send on, leaving their other links alone', async () => {
    const { t } = open(3, { kind: 'partition', ranks: [0, 1], at: 2 });
    await sendNumbered(t[0]!, 1, 3);
    await sendNumbered(t[1]!, 0, 3);
    await t[0]!.send(2, 'x', {});
    expect((await t[1]!.recv(0, 'x')).header.i).toBe(1);
    expect((await t[0]!.recv(1, 'x')).header.i).toBe(1);
    await expect(t[1]!.recv(0, 'x', { timeoutMs: 50 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    await expect(t[0]!.recv(1, 'x', { timeoutMs: 50 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    await t[2]!.recv(0, 'x', { timeoutMs: 500 });
  });

  it('fires each fault once over the injector, across the transports that share it', async () => {
    const injector = new FaultInjector({ faults: [{ kind: 'drop', rank: 0, at: 1 }] });
    const first = createInprocGroup(2, { faults: injector });
    const second = createInprocGroup(2, { faults: injector });
    group = [...first, ...second];
    await first[0]!.send(1, 'x', {});
    await second[0]!.send(1, 'x', {});
    await second[1]!.recv(0, 'x', { timeoutMs: 500 });
    expect(injector.fired).toHaveLength(1);
  });

  it('corrupts the same bytes for the same seed and plan', () => {
    const payload = new Uint8Array(4096).fill(0);
    const flipped = () => {
      const injector = new FaultInjector({ faults: [], seed: 5 });
      const out = injector.corrupt(payload);
      return [...out.keys()].filter((i) => out[i] !== 0);
    };
    expect(flipped().length).toBeGreaterThan(0);
    expect(flipped()).toEqual(flipped());
    expect(payload.every((b) => b === 0)).toBe(true);
  });

  it.each([
    [{ kind: 'drop', rank: 5, at: 1 }, 'below 4'],
    [{ kind: 'drop', rank: 0, at: 0 }, "'at'"],
    [{ kind: 'stall', rank: 0, at: 1, ms: -1 }, "'ms'"],
    [{ kind: 'explode', rank: 0, at: 1 }, 'unknown kind'],
    [{ kind: 'partition', ranks: [1, 1] }, 'two distinct ranks'],
    [{ kind: 'drop', rank: 0, at: 1, to: 0 }, "'to'"],
  ])('refuses %j as a usage error', (fault, why) => {
    expect(() => checkFaultPlan({ faults: [fault as Fault] }, 4)).toThrow(expect.objectContaining({ code: 'ERR_USAGE', message: expect.stringContaining(why) }));
  });
});
