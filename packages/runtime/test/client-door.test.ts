import { afterEach, describe, expect, it } from 'vitest';
import { connectCluster, type RemoteCluster } from '../src/api/remote-cluster.js';
import { runCoordinator, type CoordinatorHandle } from '../src/coordinator/run-coordinator.js';
import { runWorker, type WorkerHandle } from '../src/worker/run-worker.js';
import { expectExact, problem } from './attention-check.js';

const TOKEN = 'door-test-token';
const CONNECT_TIMEOUT_MS = 15_000;

describe('the client door of a running coordinator', () => {
  let coordinator: CoordinatorHandle | undefined;
  let worker: WorkerHandle | undefined;
  const clients: RemoteCluster[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await coordinator?.stop();
    await worker?.stop();
  });

  it('lets 5 clients that arrive together in promptly, not after the connect timeout', async () => {
    coordinator = await runCoordinator({ listen: '127.0.0.1:0', worldSize: 1, token: TOKEN, healthTimeoutMs: 2000 });
    worker = await runWorker({ coordinator: coordinator.address, rank: 0, worldSize: 1, token: TOKEN, env: {} });
    await coordinator.ready;
    const started = Date.now();
    const connected = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const client = await connectCluster({ coordinator: coordinator!.clientAddress, token: TOKEN, timeoutMs: CONNECT_TIMEOUT_MS });
        clients.push(client);
        return Date.now() - started;
      }),
    );
    console.log(`5 simultaneous clients connected after ${connected.join(', ')} ms`);
    expect(Math.max(...connected)).toBeLessThan(3000);
    const p = problem(32);
    for (const client of clients) expectExact(p, await client.attention(p.q, p.k, p.v), false);
  }, 60_000);
});
