import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('./fixtures/one-kernel-call.mjs', import.meta.url));

describe('a compute thread in a process started with per-process Node options', () => {
  // A worker thread refuses these with ERR_WORKER_INVALID_EXEC_ARGV when handed the parent's execArgv.
  it.each([{ flags: ['--max-old-space-size=512'] }, { flags: ['--expose-gc', '--stack-size=2000'] }])('runs a kernel call under node $flags', async ({ flags }) => {
    const { stdout } = await promisify(execFile)(process.execPath, [...flags, script], { timeout: 30_000 });
    expect(JSON.parse(stdout)).toEqual({ out: 1 });
  });

  it('leaves no ONNX Runtime telemetry log behind (it wrote /tmp/mat-debug-<pid>.log and a SQLite store per session)', async () => {
    const { ORT_DISABLE_TELEMETRY: _, ...env } = process.env;
    const child = execFile(process.execPath, [script], { timeout: 30_000, env });
    const pid = child.pid!;
    const [code] = await new Promise<[number | null]>((resolve) => child.on('exit', (exit) => resolve([exit])));
    expect(code).toBe(0);
    expect(existsSync(`/tmp/mat-debug-${pid}.log`)).toBe(false);
  });
});
