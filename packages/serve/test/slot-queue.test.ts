import { describe, expect, it } from 'vitest';
import { SlotQueue } from '../src/slot-queue.js';

describe('SlotQueue', () => {
  it('runs one at a time in arrival order and refuses past maxWaiting', async () => {
    const queue = new SlotQueue(1, 2);
    const order: string[] = [];
    const [a, b, c] = [queue.enter(), queue.enter(), queue.enter()];
    expect(() => queue.enter()).toThrow(expect.objectContaining({ code: 'ERR_BUSY' }));
    const runs = [a, b, c].map((ticket, i) => ticket.acquire().then(() => order.push(`start ${i}`)));
    await runs[0];
    expect([queue.active, queue.depth]).toEqual([1, 2]);
    a.release();
    await runs[1];
    b.release();
    await runs[2];
    c.release();
    expect(order).toEqual(['start 0', 'start 1', 'start 2']);
    expect([queue.active, queue.depth]).toEqual([0, 0]);
  });

  it('a request that leaves while waiting gives its place back', async () => {
    const queue = new SlotQueue(1, 1);
    const running = queue.enter();
    await running.acquire();
    const waiting = queue.enter();
    const leave = new AbortController();
    const gave = waiting.acquire(leave.signal);
    leave.abort();
    await expect(gave).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(queue.depth).toBe(0);
    const next = queue.enter(); // the place is free again
    running.release();
    await next.acquire();
    expect(queue.active).toBe(1);
  });

  it('runs several at once while their weights fit the capacity; the first runs whatever its weight', async () => {
    const queue = new SlotQueue(3, 4, 10);
    const [a, b, c, d] = [queue.enter(12), queue.enter(4), queue.enter(4), queue.enter(1)];
    const started: string[] = [];
    const runs = [a, b, c, d].map((ticket, i) => ticket.acquire().then(() => started.push('abcd'[i]!)));
    await runs[0];
    expect([queue.active, queue.depth, queue.load]).toEqual([1, 3, 12]);
    a.release();
    await Promise.all(runs.slice(1));
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    expect([queue.active, queue.load]).toEqual([3, 9]);
    for (const ticket of [b, c, d]) ticket.release();
    expect([queue.active, queue.load]).toEqual([0, 0]);
  });
});
