import { describe, expect, it } from 'vitest';
import { faultInWhile } from '../src/api/fault-in.js';

describe('faultInWhile', () => {
  it('keeps every value, including rows written while it runs', async () => {
    const data = new Float32Array(3 * 2 ** 20 + 5);
    data[0] = -0;
    data[1024] = 7;
    let release!: () => void;
    const pending = new Promise<void>((resolve) => (release = resolve));
    const touching = faultInWhile(data, pending);
    await new Promise((resolve) => setImmediate(resolve));
    data[2 ** 20 + 2048] = 3; // a reply's row, written between two pieces
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    await touching;
    expect(Object.is(data[0], -0)).toBe(true);
    expect([data[1024], data[2 ** 20 + 2048], data[data.length - 1]]).toEqual([7, 3, 0]);
  });

  it('maps the pages of a fresh array while the request runs', async () => {
    const data = new Float32Array(16 * 2 ** 18); // 16 MiB: 4096 pages
    const before = process.resourceUsage().minorPageFault;
    await faultInWhile(data, new Promise(() => undefined));
    expect(process.resourceUsage().minorPageFault - before).toBeGreaterThanOrEqual(4096);
  });

  it('stops once the request settles', async () => {
    const data = new Float32Array(256 * 2 ** 18); // 256 MiB: 256 pieces, one per event-loop turn
    const before = process.resourceUsage().minorPageFault;
    await faultInWhile(data, Promise.resolve());
    expect(process.resourceUsage().minorPageFault - before).toBeLessThan(4096);
  });
});
