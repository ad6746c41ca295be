import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { exitCode, killStarted, start, waitFor } from './cli-process.js';
import { runCli } from './run-cli.js';
import { freePort } from './free-port.js';

// What a person sees when a cluster's addresses, sizes or start order are off: each case's exit code and message.
const dir = mkdtempSync(join(tmpdir(), 'seqpar-cluster-messages-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const TOKEN = join(dir, 'token');
writeFileSync(TOKEN, 'cluster-secret\n');
const ATTENTION = ['attention', '--random', '--seq', '64', '--heads', '2', '--kv-heads', '1', '--head-dim', '8', '--token-file', TOKEN];

const lines = (output: string) => output.split('\n').filter((line) => line !== '');

describe('cluster messages', () => {
  afterEach(killStarted);

  it('a client dialing a closed port or an unknown host fails within 10 s, naming the address (ERR_UNREACHABLE, exit 1)', async () => {
    const port = await freePort();
    const started = performance.now();
    const [closed, unknown] = await Promise.all([
      runCli([...ATTENTION, '--coordinator', `127.0.0.1:${port}`], { timeoutMs: 20_000 }),
      runCli([...ATTENTION, '--coordinator', 'no-such-host.invalid:29501'], { timeoutMs: 20_000 }),
    ]);
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(closed.code).toBe(1);
    expect(closed.stderr.trim()).toBe(
      `seqpar: ERR_UNREACHABLE: cannot connect to 127.0.0.1:${port}: connection refused (nothing listens there); is \`seqpar coordinator\` running there, and is this its client address?`,
    );
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("seqpar: ERR_UNREACHABLE: cannot connect to no-such-host.invalid:29501: unknown host 'no-such-host.invalid'");
  }, 30_000);

  it('a worker started before its coordinator says so on each retry and "serving" only once joined; the wrong door or world size is named (exit 2)', async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const worker = start(['worker', '--coordinator', address, '--rank', '0', '--world-size', '1', '--token-file', TOKEN]);
    await waitFor('three retries', () => (lines(worker.output()).length >= 3 ? true : undefined));
    for (const line of lines(worker.output())) {
      expect(line).toMatch(
        new RegExp(`^seqpar\\[0\\]: coordinator ${address} not reachable yet: connection refused \\(nothing listens there\\); retrying in [\\d.]+ s \\(giving up in \\d+ s\\)$`),
      );
    }

    const coordinator = start(['coordinator', '--listen', address, '--world-size', '1', '--token-file', TOKEN, '--json']);
    await waitFor('the worker serving', () => (worker.output().includes('serving') ? true : undefined));
    expect(lines(worker.output()).at(-1)).toBe('seqpar worker: rank 0 of 1 joined the coordinator, serving');
    await waitFor('the coordinator ready', () => (coordinator.output().includes('"clientAddress"') ? true : undefined));
    const clientAddress = /clients to (\S+);/.exec(coordinator.output())![1]!;

    const [client, wrongSize, wrongDoor] = await Promise.all([
      runCli([...ATTENTION, '--coordinator', address], { timeoutMs: 20_000 }),
      runCli(['worker', '--coordinator', address, '--rank', '0', '--world-size', '3', '--token-file', TOKEN], { timeoutMs: 20_000 }),
      runCli(['worker', '--coordinator', clientAddress, '--rank', '0', '--world-size', '1', '--token-file', TOKEN], { timeoutMs: 20_000 }),
    ]);
    expect([client.code, wrongSize.code, wrongDoor.code]).toEqual([2, 2, 2]);
    expect(client.stderr.trim()).toBe(
      `seqpar: ERR_USAGE: ${address} is a coordinator's worker address: clients connect to its client address ('clients to HOST:PORT' in its first line; by default the next port)`,
    );
    expect(wrongSize.stderr.trim()).toBe(`seqpar: ERR_USAGE: the coordinator at ${address} runs 1 worker(s); this worker was given a world size of 3 (--world-size or WORLD_SIZE)`);
    expect(wrongDoor.stderr.trim()).toBe(
      `seqpar: ERR_USAGE: ${clientAddress} is a coordinator's client address: workers connect to its worker address (the one given to --listen)`,
    );

    coordinator.child.kill('SIGTERM');
    expect(await exitCode(coordinator.child)).toBe(0);
    expect(await exitCode(worker.child)).toBe(0);
  }, 60_000);

  it('a worker still waiting for its coordinator ends at once on SIGTERM; SEQPAR_LOG_FORMAT=json keeps pino records', async () => {
    const worker = start(['worker', '--coordinator', `127.0.0.1:${await freePort()}`, '--rank', '0', '--world-size', '1', '--token-file', TOKEN], { SEQPAR_LOG_FORMAT: 'json' });
    const record = await waitFor('a log record', () => lines(worker.output())[0]);
    expect(JSON.parse(record)).toMatchObject({ level: 40, rank: 0, msg: expect.stringContaining('not reachable yet') });
    const signalled = performance.now();
    worker.child.kill('SIGTERM');
    expect(await exitCode(worker.child)).toBe(0);
    expect(performance.now() - signalled).toBeLessThan(5000);
  }, 30_000);
});
