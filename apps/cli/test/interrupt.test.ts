import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { exitCode, killStarted, start, waitFor } from './cli-process.js';

afterEach(killStarted);

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('Ctrl-C', () => {
  it('prints "interrupted", exits 130, removes the demo folder and leaves no worker process', async () => {
    const run = start(['generate', '--demo', '--transport', 'shm', '--max-new-tokens', '5000']);
    const folder = await waitFor('the demo folder', () => /writing a tiny 4-layer model to (\S+)/.exec(run.output())?.[1], 30_000);
    await waitFor('prefill to start', () => (run.output().includes('prefill:') ? true : undefined), 60_000);
    const workers = execFileSync('pgrep', ['-P', String(run.child.pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(Number);
    expect(workers).toHaveLength(2);
    run.child.kill('SIGINT');
    expect(await exitCode(run.child)).toBe(130);
    expect(run.output()).toMatch(/^interrupted$/m);
    expect(existsSync(folder)).toBe(false);
    await waitFor('the workers to exit', () => (workers.every((pid) => !alive(pid)) ? true : undefined), 5_000);
  });
});
