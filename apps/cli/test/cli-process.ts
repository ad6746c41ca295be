import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { SEQPAR } from './run-cli.js';

export interface Running {
  readonly child: ChildProcess;
  output(): string;
}

const children: ChildProcess[] = [];

/** A long-running `seqpar` process (coordinator or worker); `killStarted` in afterEach ends whatever is left. */
export function start(args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(process.execPath, [SEQPAR, ...args], { env: { ...process.env, NODE_OPTIONS: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

export function killStarted(): void {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

export async function waitFor<T>(what: string, probe: () => T | undefined, withinMs = 15_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export function exitCode(child: ChildProcess, withinMs = 15_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return Promise.race([once(child, 'exit').then(([code]) => code as number | null), sleep(withinMs).then(() => Promise.reject(new Error('process did not exit')))]);
}

/** A coordinator for `world` workers with its workers joined; resolves with the address clients connect to. */
export async function startCluster(tokenFile: string, world = 2): Promise<{ coordinator: Running; workers: Running[]; workerAddress: string; clientAddress: string }> {
  const coordinator = start(['coordinator', '--listen', '127.0.0.1:0', '--world-size', String(world), '--token-file', tokenFile, '--json']);
  const [workerAddress, clientAddress] = await waitFor('the coordinator addresses', () => {
    const match = /workers connect to (\S+), clients to (\S+);/.exec(coordinator.output());
    return match ? [match[1]!, match[2]!] : undefined;
  });
  const workers = Array.from({ length: world }, (_, rank) =>
    start(['worker', '--coordinator', workerAddress, '--rank', String(rank), '--world-size', String(world), '--token-file', tokenFile]),
  );
  await waitFor('all workers joined', () =>
    coordinator
      .output()
      .split('\n')
      .find((line) => line.startsWith('{')),
  );
  return { coordinator, workers, workerAddress, clientAddress };
}
