import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runCoordinator, type CoordinatorHandle } from '../src/coordinator/run-coordinator.js';
import { expectExact, problem } from './attention-check.js';
import { killAll, runtimeScript } from './processes.js';

const TOKEN = 'test-secret-token';
// A worker as an outside launcher starts it: a plain node process reading its place from the environment.
const WORKER_SCRIPT = runtimeScript(`
try {
  const worker = await runtime.runWorker({ token: process.env.TEST_TOKEN, healthTimeoutMs: 2000, rejoinTimeoutMs: 2000 });
  await worker.done;
} catch (error) {
  process.stderr.write('WORKER-ERROR ' + error.code + '\\n');
  process.exit(3);
}`);

function startWorker(env: Record<string, string>, token = TOKEN): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [WORKER_SCRIPT], {
    env: { ...process.env, ...env, TEST_TOKEN: token, NODE_OPTIONS: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return { child, stderr: () => stderr };
}

function exitOf(child: ChildProcess, withinMs: number): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return Promise.race([
    once(child, 'exit').then(([code]) => code as number | null),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('worker did not exit')), withinMs)),
  ]);
}

afterAll(() => rmSync(dirname(WORKER_SCRIPT), { recursive: true, force: true }));

describe('externally launched workers (runCoordinator + runWorker)', () => {
  let coordinator: CoordinatorHandle | undefined;
  const children: ChildProcess[] = [];
  afterEach(async () => {
    await coordinator?.stop();
    killAll(children.flatMap((child) => (child.pid ? [child.pid] : [])));
    children.length = 0;
  });

  it('two workers started with torchrun variables join and serve; a wrong token is refused; stop() ends them', async () => {
    coordinator = await runCoordinator({ listen: '127.0.0.1:0', worldSize: 2, token: TOKEN, healthTimeoutMs: 2000, connectTimeoutMs: 30_000 });
    const port = coordinator.address.split(':').pop()!;
    const workers = [0, 1].map((rank) => startWorker({ RANK: String(rank), WORLD_SIZE: '2', LOCAL_RANK: String(rank), MASTER_ADDR: '127.0.0.1', MASTER_PORT: port }));
    children.push(...workers.map((worker) => worker.child));
    const cluster = await coordinator.ready;

    const p = problem(64, 4, 2, 16);
    expectExact(p, await cluster.attention(p.q, p.k, p.v, { strategy: 'ring', causal: true }), true);

    const intruder = startWorker({ RANK: '1', WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: port }, 'wrong-token');
    children.push(intruder.child);
    expect(await exitOf(intruder.child, 15_000)).toBe(3);
    expect(intruder.stderr()).toContain('WORKER-ERROR ERR_AUTH');
    expectExact(p, await cluster.attention(p.q, p.k, p.v, { strategy: 'ring', causal: true }), true);

    await coordinator.stop();
    coordinator = undefined;
    for (const worker of workers) expect(await exitOf(worker.child, 10_000)).toBe(0);
  });
});
