import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { connectCluster, type RemoteCluster } from '../src/api/remote-cluster.js';
import { runCoordinator, type CoordinatorHandle } from '../src/coordinator/run-coordinator.js';
import { runWorker, type WorkerHandle } from '../src/worker/run-worker.js';
import { expectExact, problem } from './attention-check.js';
import { holdEventLoop, killAll, runtimeScript } from './processes.js';

const TOKEN = 'remote-test-token';
// A coordinator in its own process whose worker never comes, so client requests wait in its queue.
const COORDINATOR_SCRIPT = runtimeScript(`
const handle = await runtime.runCoordinator({ listen: '127.0.0.1:0', worldSize: 1, token: '${TOKEN}' });
handle.ready.catch(() => undefined);
process.stdout.write(handle.clientAddress + '\\n');
setInterval(() => {}, 1000);`);
// A coordinator and its worker in their own process, serving a client that holds its own event loop.
const SERVING_SCRIPT = runtimeScript(`
const handle = await runtime.runCoordinator({ listen: '127.0.0.1:0', worldSize: 1, token: '${TOKEN}', healthTimeoutMs: 400 });
await runtime.runWorker({ coordinator: handle.address, rank: 0, worldSize: 1, token: '${TOKEN}', healthTimeoutMs: 400, env: {} });
await handle.ready;
process.stdout.write(handle.clientAddress + '\\n');
setInterval(() => {}, 1000);`);
afterAll(() => [COORDINATOR_SCRIPT, SERVING_SCRIPT].forEach((script) => rmSync(dirname(script), { recursive: true, force: true })));

describe('connectCluster: a client process drives a running coordinator', () => {
  let coordinator: CoordinatorHandle | undefined;
  const workers: WorkerHandle[] = [];
  const clients: RemoteCluster[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await coordinator?.stop();
    coordinator = undefined;
    await Promise.all(workers.splice(0).map((worker) => worker.stop()));
  });

  async function start(worldSize: number, maxQueue = 64): Promise<CoordinatorHandle> {
    coordinator = await runCoordinator({ listen: '127.0.0.1:0', worldSize, token: TOKEN, maxQueue, healthTimeoutMs: 2000 });
    for (let rank = 0; rank < worldSize; rank++) {
      workers.push(await runWorker({ coordinator: coordinator.address, rank, worldSize, token: TOKEN, env: {} }));
    }
    await coordinator.ready;
    return coordinator;
  }

  async function connect(address: string, token = TOKEN): Promise<RemoteCluster> {
    const client = await connectCluster({ coordinator: address, token, timeoutMs: 10_000 });
    clients.push(client);
    return client;
  }

  it('answers exactly, from two clients at once, with the stats of the run', async () => {
    const { clientAddress } = await start(2);
    const [a, b] = await Promise.all([connect(clientAddress), connect(clientAddress)]);
    expect(a.workers).toBe(2);
    expect(a.transport).toBe('ws');
    const p = problem(64, 4, 2, 16);
    const [ra, rb] = await Promise.all([a.attention(p.q, p.k, p.v, { strategy: 'ring', causal: true }), b.attention(p.q, p.k, p.v, { strategy: 'zigzag', causal: true })]);
    expectExact(p, ra, true);
    expectExact(p, rb, true);
    expect(ra.stats).toMatchObject({ strategy: 'ring', workers: 2, transport: 'ws', seq: 64 });
    expect(ra.stats.ranks).toHaveLength(2);
    // Packed documents and a window travel over the client channel too.
    const packed = { causal: true, documents: [10, 1, 40, 13], window: 7 };
    expectExact(p, await a.attention(p.q, p.k, p.v, { ...packed, strategy: 'striped' }), packed);
  });

  it('refuses a wrong token with ERR_AUTH and reports coordinator-side errors with their code', async () => {
    const { clientAddress } = await start(1);
    await expect(connect(clientAddress, 'wrong-token')).rejects.toMatchObject({ code: 'ERR_AUTH' });
    const client = await connect(clientAddress);
    const p = problem(16, 3, 1, 8);
    const bogus = 'no-such-strategy' as 'ring';
    await expect(client.attention(p.q, p.k, p.v, { strategy: bogus })).rejects.toMatchObject({ code: 'ERR_USAGE', exitCode: 2 });
    expectExact(p, await client.attention(p.q, p.k, p.v), false);
  });

  it('sends every request through the bounded queue: overflow is ERR_BUSY, the rest complete', async () => {
    const { clientAddress } = await start(1, 1);
    const client = await connect(clientAddress);
    const p = problem(128, 2, 1, 16);
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => client.attention(p.q, p.k, p.v)));
    const busy = outcomes.filter((o) => o.status === 'rejected' && (o.reason as { code?: string }).code === 'ERR_BUSY');
    const done = outcomes.filter((o) => o.status === 'fulfilled');
    expect(busy.length + done.length).toBe(6);
    expect(busy.length).toBeGreaterThan(0);
    expect(done.length).toBeGreaterThanOrEqual(2);
  });

  it('fails a pending request with a typed error when the coordinator goes away', async () => {
    // No worker joins, so the request waits in the queue until the coordinator stops.
    coordinator = await runCoordinator({ listen: '127.0.0.1:0', worldSize: 1, token: TOKEN, healthTimeoutMs: 2000 });
    coordinator.ready.catch(() => undefined);
    const client = await connect(coordinator.clientAddress);
    const p = problem(16);
    const failed = expect(client.attention(p.q, p.k, p.v, { timeoutMs: 30_000 })).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_(CLOSED|PEER_LOST)$/) });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    await coordinator.stop();
    coordinator = undefined;
    await failed;
    expect(Date.now() - started).toBeLessThan(5000);
    await expect(client.attention(p.q, p.k, p.v)).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_(CLOSED|PEER_LOST)$/) });
  });

  it('aborts a queued request through its AbortSignal', async () => {
    coordinator = await runCoordinator({ listen: '127.0.0.1:0', worldSize: 1, token: TOKEN, healthTimeoutMs: 2000 });
    coordinator.ready.catch(() => undefined);
    const client = await connect(coordinator.clientAddress);
    const controller = new AbortController();
    const p = problem(16);
    const pending = client.attention(p.q, p.k, p.v, { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    await expect(pending).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  it.each(['SIGKILL', 'SIGSTOP'] as const)('fails a pending request with ERR_PEER_LOST, not a hang, when the coordinator process gets %s', async (signal) => {
    const child = spawn(process.execPath, [COORDINATOR_SCRIPT], { env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(child.stdout!, 'data')) as [Buffer];
      const client = await connect(line.toString().trim());
      const p = problem(16);
      const failed = expect(client.attention(p.q, p.k, p.v, { timeoutMs: 30_000 })).rejects.toMatchObject({ code: 'ERR_PEER_LOST' });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const killed = Date.now();
      child.kill(signal);
      await failed;
      expect(Date.now() - killed).toBeLessThan(3000);
    } finally {
      killAll([child.pid!]);
    }
  });

  it('keeps the session of a client that holds its event loop past the health timeout', async () => {
    const child = spawn(process.execPath, [SERVING_SCRIPT], { env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(child.stdout!, 'data')) as [Buffer];
      const client = await connectCluster({ coordinator: line.toString().trim(), token: TOKEN, timeoutMs: 10_000, healthTimeoutMs: 400 });
      clients.push(client);
      const p = problem(32);
      expectExact(p, await client.attention(p.q, p.k, p.v), false);
      holdEventLoop(1500); // the client's own synchronous work: its pings go unanswered meanwhile
      expectExact(p, await client.attention(p.q, p.k, p.v), false);
    } finally {
      killAll([child.pid!]);
    }
  });
});
