import { describe, expect, it } from 'vitest';
import { DeadlineTimer } from '../src/deadline-timer.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The owner's side: named deadlines it keeps itself, swept when the timer fires. */
function owner() {
  const pending = new Map<string, number>();
  const expired: string[] = [];
  const timer = new DeadlineTimer((now) => {
    let next = Infinity;
    for (const [name, at] of pending) {
      if (at <= now) {
        pending.delete(name);
        expired.push(name);
        timer.settled();
      } else next = Math.min(next, at);
    }
    return next;
  });
  const add = (name: string, inMs: number) => {
    const at = performance.now() + inMs;
    pending.set(name, at);
    timer.add(at);
  };
  const settle = (name: string) => pending.delete(name) && timer.settled();
  return { expired, add, settle };
}

describe('deadline timer', () => {
  it('expires each deadline once it passes, an earlier one added later first, and never a settled one', async () => {
    const { expired, add, settle } = owner();
    add('late', 600);
    add('early', 20);
    add('settled', 300);
    add('middle', 400);
    settle('settled');
    await sleep(150);
    expect(expired).toEqual(['early']);
    await sleep(650);
    expect(expired).toEqual(['early', 'middle', 'late']);
  });

  it('re-arms for deadlines added after everything pending had settled', async () => {
    const { expired, add, settle } = owner();
    add('first', 5_000);
    settle('first'); // the armed timer stays, unreferenced
    add('second', 20);
    await sleep(80);
    expect(expired).toEqual(['second']);
  });
});
