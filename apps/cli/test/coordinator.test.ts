import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { readFloat32NpyFile } from '@seqpar/core';
import { exitCode, killStarted, start, waitFor } from './cli-process.js';
import { runCli } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'seqpar-cli-cluster-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);
writeFileSync(at('token'), '  cluster-secret\n');
writeFileSync(at('wrong-token'), 'not-the-secret\n');
writeFileSync(at('empty-token'), ' \n');

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
const RANDOM = ['--random', '--seq', '96', '--heads', '4', '--kv-heads', '2', '--head-dim', '16', '--seed', '5', '--causal', '--strategy', 'zigzag'];

describe('seqpar coordinator + seqpar worker + seqpar attention --coordinator', () => {
  afterEach(killStarted);

  it('serves a request like a local run; wrong tokens are refused; SIGTERM ends the workers and exits 0', async () => {
    const coordinator = start(['coordinator', '--listen', '127.0.0.1:0', '--world-size', '2', '--token-file', at('token'), '--json']);
    const [workerAddress, clientAddress] = await waitFor('the coordinator addresses', () => {
      const match = /workers connect to (\S+), clients to (\S+);/.exec(coordinator.output());
      return match ? [match[1]!, match[2]!] : undefined;
    });
    const port = workerAddress.split(':').pop()!;
    const workers = [
      start(['worker', '--coordinator', workerAddress, '--rank', '0', '--world-size', '2', '--token-file', at('token')]),
      start(['worker', '--token-file', at('token')], { RANK: '1', WORLD_SIZE: '2', LOCAL_RANK: '1', MASTER_ADDR: '127.0.0.1', MASTER_PORT: port }),
    ];
    const ready = await waitFor('all workers joined', () =>
      coordinator
        .output()
        .split('\n')
        .find((line) => line.startsWith('{')),
    );
    expect(JSON.parse(ready)).toEqual({ version: expect.any(String), address: workerAddress, clientAddress, worldSize: 2, transport: 'ws' });

    const [remote, local] = await Promise.all([
      runCli(['attention', ...RANDOM, '--coordinator', clientAddress, '--token-file', at('token'), '--json', '--out', at('remote-out.npy'), '--lse', at('remote-lse.npy')], {
        timeoutMs: 30_000,
      }),
      runCli(['attention', ...RANDOM, '--workers', '2', '--json', '--out', at('local-out.npy'), '--lse', at('local-lse.npy')], { timeoutMs: 30_000 }),
    ]);
    expect(remote.code).toBe(0);
    expect(local.code).toBe(0);
    expect(JSON.parse(remote.stdout)).toMatchObject({ strategy: 'zigzag', workers: 2, transport: 'ws', seq: 96 });
    expect(JSON.parse(remote.stdout).ranks).toHaveLength(2);
    const [remoteOut, localOut, remoteLse, localLse] = await Promise.all(
      ['remote-out', 'local-out', 'remote-lse', 'local-lse'].map((name) => readFloat32NpyFile(at(`${name}.npy`))),
    );
    expect(remoteOut!.shape).toEqual(localOut!.shape);
    expect(maxDiff(remoteOut!.data, localOut!.data)).toBeLessThanOrEqual(1e-5);
    expect(maxDiff(remoteLse!.data, localLse!.data)).toBeLessThanOrEqual(1e-5);

    // plan and --strategy auto see the running cluster's size: two workers, not the one --workers defaults to.
    const [plan, auto] = await Promise.all([
      runCli(['plan', '--seq', '65536', '--causal', '--coordinator', clientAddress, '--token-file', at('token'), '--json'], { timeoutMs: 30_000 }),
      runCli(
        [
          'attention',
          ...RANDOM.filter((arg) => arg !== 'zigzag' && arg !== '--strategy'),
          '--strategy',
          'auto',
          '--coordinator',
          clientAddress,
          '--token-file',
          at('token'),
          '--json',
        ],
        { timeoutMs: 30_000 },
      ),
    ]);
    expect(plan.code).toBe(0);
    expect(JSON.parse(plan.stdout)).toMatchObject({ workers: 2, degree: 2 });
    expect(auto.code).toBe(0);
    expect([1, 2]).toContain(JSON.parse(auto.stdout).workers);

    const intruder = start(['worker', '--coordinator', workerAddress, '--rank', '1', '--world-size', '2', '--token-file', at('wrong-token')]);
    const client = await runCli(['attention', ...RANDOM, '--coordinator', clientAddress, '--token-file', at('wrong-token')], { timeoutMs: 30_000 });
    expect(client.code).toBe(1);
    expect(client.stderr).toContain('ERR_AUTH');
    expect(await exitCode(intruder.child)).toBe(1);
    expect(intruder.output()).toContain('ERR_AUTH');

    coordinator.child.kill('SIGTERM');
    expect(await exitCode(coordinator.child)).toBe(0);
    for (const worker of workers) expect(await exitCode(worker.child, 5000)).toBe(0);
  });

  it('a missing or empty token file is a usage error (exit 2)', async () => {
    const missing = await runCli(['coordinator', '--listen', '127.0.0.1:0', '--world-size', '1', '--token-file', at('no-such-file')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('ERR_FILE_NOT_FOUND');
    const empty = await runCli(['worker', '--coordinator', '127.0.0.1:1', '--rank', '0', '--world-size', '1', '--token-file', at('empty-token')]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('ERR_USAGE');
    const client = await runCli(['attention', ...RANDOM, '--coordinator', '127.0.0.1:1', '--token-file', at('empty-token')]);
    expect(client.code).toBe(2);
  });
});
