import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits (bounded) until none of `pids` is alive. */
export async function expectAllGone(pids: readonly number[], withinMs = 3000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(50);
  expect(pids.filter(isAlive)).toEqual([]);
}

/** Test cleanup: wake and kill whatever is left. */
export function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
  }
}
