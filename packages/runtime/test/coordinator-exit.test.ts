import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { expectAllGone, killAll, runtimeScript } from './processes.js';

// A coordinator in its own process: starts two local workers, prints their pids, then waits to be signalled.
const COORDINATOR_SCRIPT = runtimeScript(`
const cluster = await runtime.createCluster({ workers: 2, transport: 'ws' });
process.stdout.write(JSON.stringify(cluster.pids()) + '\\n');
setInterval(() => {}, 1000);`);

afterAll(() => rmSync(dirname(COORDINATOR_SCRIPT), { recursive: true, force: true }));

describe('the coordinator going away', () => {
  const pids: number[] = [];
  afterEach(() => killAll(pids.splice(0)));

  it.each(['SIGTERM', 'SIGINT', 'SIGKILL'] as const)('%s of the coordinator leaves no worker process behind', async (signal) => {
    const coordinator: ChildProcess = spawn(process.execPath, [COORDINATOR_SCRIPT], {
      env: { ...process.env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    pids.push(coordinator.pid!);
    const [line] = (await once(coordinator.stdout!, 'data')) as [Buffer];
    const workers = JSON.parse(line.toString()) as number[];
    pids.push(...workers);
    expect(workers).toHaveLength(2);
    coordinator.kill(signal);
    await once(coordinator, 'exit');
    await expectAllGone(workers);
  });
});
