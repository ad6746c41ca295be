import { describe, expect, it } from 'vitest';
import { DeadlineTimer, type Deadline } from '../src/deadline-timer.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('deadline timer', () => {
  it('expires each deadline once it passes, an earlier one added later first, and never a deleted one', async () => {
    const timer = new DeadlineTimer<Deadline>();
    const expired: string[] = [];
    const add = (name: string, inMs: number): Deadline => {
      const deadline: Deadline = { at: performance.now() + inMs, expire: () => (expired.push(name), timer.delete(deadline)) };
      timer.add(deadline);
      return deadline;
    };
    add('late', 600);
    add('early', 20);
    const settled = add('settled', 300);
    add('middle', 400);
    timer.delete(settled);
    await sleep(150);
    expect(expired).toEqual(['early']);
    await sleep(650);
    expect(expired).toEqual(['early', 'middle', 'late']);
  });

  it('re-arms for deadlines added after everything pending had settled', async () => {
    const timer = new DeadlineTimer<Deadline>();
    let fired = 0;
    const first: Deadline = { at: performance.now() + 5_000, expire: () => (fired += 100) };
    timer.add(first);
    timer.delete(first); // the armed timer stays, unreferenced
    const second: Deadline = { at: performance.now() + 20, expire: () => ((fired += 1), timer.delete(second)) };
    timer.add(second);
    await sleep(80);
    expect(fired).toBe(1);
  });
});
