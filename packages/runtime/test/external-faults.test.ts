import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { isSeqparError, seededRandom } from '@seqpar/core';
import type { StrategyName } from '@seqpar/strategies';
import type { Fault } from '@seqpar/transport';
import { afterAll, describe, expect, it } from 'vitest';
import { connectCluster } from '../src/api/remote-cluster.js';
import { runCoordinator } from '../src/coordinator/run-coordinator.js';
import { expectExact, problem } from './attention-check.js';
import { expectAllGone, killAll, runtimeScript } from './processes.js';

process.env.SEQPAR_LOG_LEVEL = 'silent';
const TOKEN = 'external-fault-token';
const shmEntries = () =>
  readdirSync('/dev/shm')
    .filter((name) => name.startsWith('seqpar'))
    .sort();

// A worker as a launcher starts it, with the faults of its own rank from the environment.
const WORKER_SCRIPT = runtimeScript(`
const faults = JSON.parse(process.env.TEST_FAULTS ?? '[]');
try {
  const worker = await runtime.runWorker({ token: '${TOKEN}', transport: process.env.TEST_TRANSPORT, healthTimeoutMs: 400, rejoinTimeoutMs: Number(process.env.TEST_REJOIN_MS ?? 3000), network: faults.length ? { faults: { faults } } : {} });
  await worker.done;
} catch (error) {
  process.stderr.write('WORKER-ERROR ' + error.code + '\\n');
  process.exit(3);
}`);
// A coordinator in its own process, to be killed: prints its worker and client addresses.
const COORDINATOR_SCRIPT = runtimeScript(`
const handle = await runtime.runCoordinator({ listen: '127.0.0.1:0', worldSize: 2, token: '${TOKEN}', transport: process.env.TEST_TRANSPORT, healthTimeoutMs: 400 });
process.stdout.write(JSON.stringify({ address: handle.address, client: handle.clientAddress }) + '\\n');
setInterval(() => {}, 1000);`);
afterAll(() => {
  rmSync(dirname(WORKER_SCRIPT), { recursive: true, force: true });
  rmSync(dirname(COORDINATOR_SCRIPT), { recursive: true, force: true });
});

function startWorker(address: string, rank: number, transport: string, faults: Fault[] = [], rejoinMs = 3000): ChildProcess {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), address.slice(address.lastIndexOf(':') + 1)];
  const env = {
    RANK: String(rank),
    WORLD_SIZE: '2',
    MASTER_ADDR: host,
    MASTER_PORT: port,
    TEST_FAULTS: JSON.stringify(faults),
    TEST_TRANSPORT: transport,
    TEST_REJOIN_MS: String(rejoinMs),
  };
  return spawn(process.execPath, [WORKER_SCRIPT], { env: { ...process.env, ...env, NODE_OPTIONS: '' }, stdio: ['ignore', 'ignore', 'ignore'] });
}

const STRATEGIES: StrategyName[] = ['ring', 'zigzag', 'token-ring', 'ulysses', 'striped'];
// Without checksums (external workers and their coordinator agree on none) a corrupted or duplicated frame could
// not be told from a good one, so this campaign sticks to faults every transport notices.
const KINDS = ['kill', 'stall', 'delay', 'drop', 'partition'] as const;

/** A fault of `kind` at a random rank and send. */
function randomFault(kind: (typeof KINDS)[number], random: () => number): Fault {
  const rank = Math.floor(random() * 2);
  const at = 1 + Math.floor(random() * 4);
  if (kind === 'partition') return { kind, ranks: [0, 1], at: 1 + Math.floor(random() * 2) };
  if (kind === 'stall' || kind === 'delay') return { kind, rank, at, ms: [15, 2500][Math.floor(random() * 2)]! };
  return { kind, rank, at };
}

describe('fault campaign on externally launched workers', () => {
  it('every faulted request ends exact or with a typed error naming a rank; the launcher restarts what died; the next request is exact', async () => {
    const random = seededRandom(4242);
    const outcomes: string[] = [];
    for (let i = 0; i < 7; i++) {
      const transport = i % 2 ? 'shm' : 'ws';
      const faults = [randomFault(KINDS[i % KINDS.length]!, random)];
      const coordinator = await runCoordinator({
        listen: '127.0.0.1:0',
        worldSize: 2,
        token: TOKEN,
        transport,
        healthTimeoutMs: 400,
        requestTimeoutMs: 2000,
        connectTimeoutMs: 20_000,
      });
      const workers = [0, 1].map((rank) =>
        startWorker(
          coordinator.address,
          rank,
          transport,
          faults.filter((f) => ('rank' in f && f.rank === rank) || f.kind === 'partition'),
        ),
      );
      const started = Date.now();
      try {
        const cluster = await coordinator.ready;
        const p = problem(40 + i, 4, 2, 16, i);
        const strategy = STRATEGIES[i % STRATEGIES.length]!;
        const first = await cluster.attention(p.q, p.k, p.v, { strategy, causal: true }).then(
          (result) => (expectExact(p, result, true), 'ok'),
          (error: unknown) => {
            expect(isSeqparError(error), String(error)).toBe(true);
            expect((error as Error).message).toMatch(/\brank \d\b/);
            return (error as { code: string }).code;
          },
        );
        outcomes.push(`${faults[0]!.kind}: ${first}`);
        // The launcher's part: a worker that died is started again (without faults) and rejoins.
        if (first !== 'ok') await Promise.race([...workers.map((child) => once(child, 'exit')), new Promise((resolve) => setTimeout(resolve, 1000))]);
        workers.forEach((child, rank) => {
          if (child.exitCode !== null || child.signalCode !== null) workers[rank] = startWorker(coordinator.address, rank, transport);
        });
        const next = await cluster.attention(p.q, p.k, p.v, { strategy, causal: true, timeoutMs: 8000 }).catch((error: Error) => error);
        if (faults[0]!.kind === 'partition') {
          // The injected partition never heals (its ranks stay alive, so nothing restarts them): the next request
          // may only fail, in bounded time, naming the ranks it waited for.
          if (next instanceof Error) expect(next.message).toMatch(/\brank \d\b/);
          else expectExact(p, next, true);
        } else {
          if (next instanceof Error) throw new Error(`after ${JSON.stringify(faults)} (${first}) on ${transport}: ${next.message}`);
          expectExact(p, next, true);
        }
      } finally {
        await coordinator.stop();
        const pids = workers.map((child) => child.pid!);
        const alive = await expectAllGone(pids, 5000).then(
          () => '',
          (error: Error) => `after ${JSON.stringify(faults)} on ${transport}: ${error.message}`,
        );
        killAll(pids);
        expect(alive).toBe('');
      }
      expect(Date.now() - started).toBeLessThan(25_000);
    }
    console.info(`external campaign: ${outcomes.join('; ')}`);
    expect(outcomes.some((o) => !o.endsWith(': ok'))).toBe(true);
  }, 200_000);

  it.each(['ws', 'shm'])(
    'a killed coordinator (%s): the client fails fast, the workers exit within their rejoin bound, /dev/shm is clean',
    async (transport) => {
      const before = shmEntries();
      const coordinator = spawn(process.execPath, [COORDINATOR_SCRIPT], {
        env: { ...process.env, TEST_TRANSPORT: transport, NODE_OPTIONS: '' },
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      const [line] = (await once(coordinator.stdout!, 'data')) as [Buffer];
      const { address, client: clientAddress } = JSON.parse(line.toString()) as { address: string; client: string };
      const workers = [0, 1].map((rank) => startWorker(address, rank, transport, [], 2000));
      try {
        const client = await connectCluster({ coordinator: clientAddress, token: TOKEN, timeoutMs: 20_000, healthTimeoutMs: 500 });
        const p = problem(64, 4, 2, 16);
        expectExact(p, await client.attention(p.q, p.k, p.v, { strategy: 'zigzag', causal: true, timeoutMs: 20_000 }), true);
        const big = problem(6000, 4, 2, 64);
        const pending = client.attention(big.q, big.k, big.v, { strategy: 'ring', timeoutMs: 30_000 }).then(
          () => 'finished',
          (error: { code: string }) => error.code,
        );
        await new Promise((resolve) => setTimeout(resolve, 150));
        const killed = Date.now();
        coordinator.kill('SIGKILL');
        expect(await pending).toBe('ERR_PEER_LOST');
        expect(Date.now() - killed).toBeLessThan(3000);
        // Workers give up on the coordinator after their rejoin bound (2 s), not twice that nor a connect timeout.
        await Promise.all(workers.map((child) => (child.exitCode === null ? once(child, 'exit') : undefined)));
        expect(Date.now() - killed).toBeLessThan(2000 + 3000);
        expect(workers.map((child) => child.exitCode)).toEqual([3, 3]);
        await client.close();
      } finally {
        killAll([coordinator.pid!, ...workers.map((child) => child.pid!)]);
      }
      expect(shmEntries()).toEqual(before);
    },
    60_000,
  );
});
