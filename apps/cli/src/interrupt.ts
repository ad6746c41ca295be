import { rmSync } from 'node:fs';
import { log } from './output.js';

const madeByThisRun = new Set<string>();

/** A file or folder this run made and must not leave behind if Ctrl-C ends it; disposing forgets it again. */
export function removeOnInterrupt(path: string): Disposable {
  madeByThisRun.add(path);
  return { [Symbol.dispose]: () => madeByThisRun.delete(path) };
}

/**
 * Ctrl-C ends a one-shot command at once with the shell's 130: what it made is removed, and its worker processes,
 * whose IPC channel closes with this process, exit on their own. (`coordinator` and `worker` shut down gracefully
 * on SIGINT instead.)
 */
export function exitOnInterrupt(): void {
  process.once('SIGINT', () => {
    log('interrupted');
    for (const path of madeByThisRun) rmSync(path, { recursive: true, force: true });
    process.exit(130);
  });
}
