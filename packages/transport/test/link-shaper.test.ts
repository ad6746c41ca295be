import { afterEach, describe, expect, it } from 'vitest';
import { createInprocGroup } from '../src/inproc-transport.js';
import type { LinkSpec } from '../src/link-shaper.js';
import type { Transport } from '../src/transport.js';

const MB = 1_000_000;
let group: Transport[] = [];
afterEach(async () => {
  await Promise.all(group.map((t) => t.close()));
  group = [];
});

function open(n: number, links?: LinkSpec): Transport[] {
  group = createInprocGroup(n, links ? { links } : {});
  return group;
}

/** Milliseconds from the start of `send` to the frame's arrival at `to`. */
async function transferMs(t: Transport[], from: number, to: number, bytes: number, tag = 'x'): Promise<number> {
  const start = performance.now();
  const arrived = t[to]!.recv(from, tag).then(() => performance.now() - start);
  await t[from]!.send(to, tag, {}, new Uint8Array(bytes));
  return arrived;
}

describe('link shaping', () => {
  it('adds ~10 ms to a 1 MB frame over a 100 MB/s link', async () => {
    const plain = open(2);
    const unshaped = Math.min(await transferMs(plain, 0, 1, MB), await transferMs(plain, 0, 1, MB));
    await Promise.all(plain.map((t) => t.close()));
    const shaped = open(2, { bytesPerSecond: 100 * MB });
    const shapedMs = await transferMs(shaped, 0, 1, MB);
    expect(shapedMs - unshaped).toBeGreaterThanOrEqual(9);
    expect(shapedMs - unshaped).toBeLessThan(25);
  });

  it('adds the latency to every frame but does not hold the sender for it', async () => {
    const t = open(2, { latencyMs: 30 });
    const start = performance.now();
    const arrived = t[1]!.recv(0, 'x').then(() => performance.now() - start);
    await t[0]!.send(1, 'x', {}, new Uint8Array(16));
    expect(performance.now() - start).toBeLessThan(15);
    expect(await arrived).toBeGreaterThanOrEqual(29);
  });

  it('holds the sender while its bytes serialise', async () => {
    const t = open(2, { bytesPerSecond: 50 * MB });
    const start = performance.now();
    await t[0]!.send(1, 'x', {}, new Uint8Array(MB));
    expect(performance.now() - start).toBeGreaterThanOrEqual(19);
  });

  it('serialises frames per direction: two at once take twice as long, opposite directions do not wait', async () => {
    const t = open(2, { bytesPerSecond: 100 * MB });
    const same = await Promise.all([transferMs(t, 0, 1, MB, 'a'), transferMs(t, 0, 1, MB, 'b')]);
    expect(Math.max(...same)).toBeGreaterThanOrEqual(19);
    const opposite = await Promise.all([transferMs(t, 0, 1, MB, 'c'), transferMs(t, 1, 0, MB, 'd')]);
    expect(Math.max(...opposite)).toBeGreaterThanOrEqual(9);
    expect(Math.max(...opposite)).toBeLessThan(19);
  });

  it('shapes each direction by its own override (asymmetric link)', async () => {
    const t = open(3, { latencyMs: 0, links: [{ from: 1, to: 0, latencyMs: 40 }] });
    const [forward, backward, other] = await Promise.all([transferMs(t, 0, 1, 64, 'f'), transferMs(t, 1, 0, 64, 'b'), transferMs(t, 2, 0, 64, 'o')]);
    expect(backward).toBeGreaterThanOrEqual(39);
    expect(forward).toBeLessThan(20);
    expect(other).toBeLessThan(20);
  });

  it('spreads frames by jitter without reordering them', async () => {
    const t = open(2, { latencyMs: 5, jitterMs: 20, seed: 7 });
    const count = 20;
    const start = performance.now();
    const received = (async () => {
      const times: number[] = [];
      for (let i = 0; i < count; i++) {
        const frame = await t[1]!.recv(0, 'j');
        expect(frame.header.i).toBe(i);
        times.push(performance.now() - start);
      }
      return times;
    })();
    for (let i = 0; i < count; i++) await t[0]!.send(1, 'j', { i }, new Uint8Array(8));
    const times = await received;
    expect(times[0]).toBeGreaterThanOrEqual(4);
    expect(times.at(-1)!).toBeLessThan(5 + 20 + 30);
  });

  it('leaves links outside `ranks` unshaped', async () => {
    const t = open(3, { latencyMs: 40, ranks: 2 });
    const [inside, toOutside] = await Promise.all([transferMs(t, 0, 1, 64, 'i'), transferMs(t, 0, 2, 64, 'o')]);
    expect(inside).toBeGreaterThanOrEqual(39);
    expect(toOutside).toBeLessThan(20);
  });

  it('still delivers payloads intact and lets the sender reuse its buffer at once', async () => {
    const t = open(2, { latencyMs: 10 });
    const buffer = new Uint8Array([1, 2, 3, 4]);
    await t[0]!.send(1, 'x', { n: 1 }, buffer);
    buffer.fill(0);
    const frame = await t[1]!.recv(0, 'x');
    expect([...frame.payload]).toEqual([1, 2, 3, 4]);
    expect(frame.header).toEqual({ n: 1 });
  });

  it('refuses malformed specs as usage errors', () => {
    expect(() => createInprocGroup(2, { links: { latencyMs: -1 } })).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
    expect(() => createInprocGroup(2, { links: { bytesPerSecond: 0 } })).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
    expect(() => createInprocGroup(2, { links: { links: [{ from: 1, to: 1 }] } })).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
  });
});
