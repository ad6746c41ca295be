import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ComputeQueue } from '../src/compute-queue.js';

/** A task that holds the queue for `ms` (as a native run holds a compute thread) and notes when it ran. */
const busy = (log: string[], name: string, ms: number) => async () => {
  log.push(name);
  await sleep(ms);
};

describe('ComputeQueue', () => {
  it('runs one task at a time, lowest priority first, first come among equals', async () => {
    const queue = new ComputeQueue(0, 0);
    const log: string[] = [];
    const runs = [
      queue.run(5, busy(log, 'first', 30)),
      queue.run(5, busy(log, 'b', 1)),
      queue.run(0, busy(log, 'urgent', 1)),
      queue.run(9, busy(log, 'last', 1)),
      queue.run(5, busy(log, 'c', 1)),
    ];
    await Promise.all(runs);
    expect(log).toEqual(['first', 'urgent', 'b', 'c', 'last']);
    await expect(queue.run(0, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  });

  it("waits a moment after an urgent task for its caller's next one before starting less urgent work", async () => {
    const queue = new ComputeQueue(20, 1000);
    const log: string[] = [];
    const background = Array.from({ length: 3 }, (_, i) => queue.run(9, busy(log, `piece ${i}`, 5)));
    // An urgent caller whose tasks come one after another, with a little work between them.
    const urgent = (async () => {
      for (let i = 0; i < 3; i++) {
        await queue.run(0, busy(log, `step ${i}`, 1));
        await sleep(2);
      }
    })();
    await Promise.all([...background, urgent]);
    expect(log).toEqual(['piece 0', 'step 0', 'step 1', 'step 2', 'piece 1', 'piece 2']);
  });

  it('stops waiting for urgent work once it has held the others back for the streak bound', async () => {
    const queue = new ComputeQueue(50, 35);
    const log: string[] = [];
    const background = Promise.all([queue.run(9, busy(log, 'running', 5)), queue.run(9, busy(log, 'piece', 1))]);
    const urgent = (async () => {
      for (let i = 0; i < 6; i++) {
        await queue.run(0, busy(log, `step ${i}`, 10));
        await sleep(2);
      }
    })();
    await Promise.all([background, urgent]);
    // Steps ran back to back for a while, then the piece went before the last ones.
    expect(log.slice(0, 3)).toEqual(['running', 'step 0', 'step 1']);
    expect(log.indexOf('piece')).toBeLessThan(log.length - 1);
  });
});
