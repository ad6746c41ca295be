import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
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

/**
 * Writes an ES module that uses the built runtime (as `runtime`) to a temporary file and returns its path: the
 * way an outside launcher or a user's program would start one. (A `node -e` script would leak `--input-type`
 * into the kernel's worker thread.)
 */
export function runtimeScript(body: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'seqpar-runtime-test-'));
  const path = join(dir, 'script.mjs');
  const runtimeUrl = pathToFileURL(join(import.meta.dirname, '..', 'dist', 'index.js')).href;
  writeFileSync(path, `import * as runtime from '${runtimeUrl}';\n${body}\n`);
  return path;
}

/** Blocks this process's event loop for `ms`, as a caller's own synchronous work would (no timer, socket or ping runs). */
export function holdEventLoop(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}
