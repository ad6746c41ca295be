import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readmeBlock } from './readme-blocks.js';
import { SEQPAR } from './run-cli.js';
import { freePort } from './free-port.js';

// The README's command blocks run as written (bash, in an empty folder), `npx seqpar` being this build's CLI, so
// the README cannot drift from the commands. The package test runs its library example in an installed project.
const dir = mkdtempSync(join(tmpdir(), 'seqpar-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function bash(script: string, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-e', '-c', script], { cwd, env: { ...process.env, NODE_OPTIONS: '' }, timeout: 150_000, maxBuffer: 64 * 2 ** 20 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

const asWritten = (block: string): string => block.replaceAll('npx seqpar', `node ${SEQPAR}`);

describe('README', () => {
  it('quick start runs as written', async () => {
    const run = await bash(asWritten(readmeBlock('## Quick start', 'sh')), dir);
    expect(run.code, run.stderr).toBe(0);
    const reports = run.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { strategy: string; ranks: { visiblePairs: number }[] });
    expect(reports.map((report) => report.strategy)).toEqual(['zigzag', 'zigzag']);
    // The packed-documents run: 3072, 512 and 512 tokens under a window of 256 leave these pairs visible.
    const window = (length: number) => Array.from({ length }, (_, i) => Math.min(i + 1, 256)).reduce((a, b) => a + b, 0);
    expect(reports[1]!.ranks.reduce((sum, rank) => sum + rank.visiblePairs, 0)).toBe(window(3072) + 2 * window(512));
    expect(run.stderr).toMatch(/^striped on 2 worker\(s\), S=2048/m);
    expect(run.stderr).toMatch(/^TTFT \d+ ms/m);
  }, 150_000);

  it('the single-host cluster runs as written and ends with its coordinator', async () => {
    // Two free ports in a row: the block's 29500 (workers) and 29501 (clients).
    let port = await freePort();
    while (!(await isFree(port + 1))) port = await freePort();
    const script = asWritten(readmeBlock('## A cluster across hosts', 'sh'))
      .replaceAll('29500', String(port))
      .replaceAll('29501', String(port + 1));
    const run = await bash(`${script}\nwait`, dir);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout.split('\n').find((line) => line.includes('"strategy"'))!)).toMatchObject({ strategy: 'zigzag', workers: 2, seq: 2048 });
  }, 150_000);
});

async function isFree(port: number): Promise<boolean> {
  const server = createServer();
  const free = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (free) await new Promise((resolve) => server.close(resolve));
  return free;
}
