import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomTensor, readFloat32NpyFile, seededRandom, SeqparError, writeNpyFile, type ChromeTraceEvent, type Tensor } from '@seqpar/core';
import { needsNetem, planNetns, type LinkShape, type NetnsPlan } from './netns-plan.js';
import { deleteNamespacesSync, execCommand, netnsSupport, seqparNamespaces, sweepOrphanNamespaces } from './netns-support.js';

export interface NetnsAttentionRequest {
  readonly seq: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly strategy: string;
  readonly causal?: boolean;
  readonly seed?: number;
}

export interface NetnsClusterOptions {
  readonly workers: number;
  /** argv that runs the seqpar CLI, e.g. [process.execPath, 'apps/cli/bin/seqpar.js']. */
  readonly seqpar: readonly string[];
  readonly request: NetnsAttentionRequest;
  /** What each worker's link does to the traffic it sends (one shape, or one per rank). */
  readonly shape?: LinkShape | readonly LinkShape[];
  /** Bound on the whole run, setup to teardown. Default 120 s. */
  readonly timeoutMs?: number;
  readonly healthTimeoutMs?: number;
}

export interface NetnsClusterResult {
  readonly plan: NetnsPlan;
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  readonly out: Tensor;
  readonly lse: Tensor;
  /** What `seqpar attention --json` printed. */
  readonly summary: Record<string, unknown>;
  /** The merged Perfetto trace of the request (`--trace`). */
  readonly trace: { traceEvents: ChromeTraceEvent[] };
  /** Bytes each worker's veth carried (rank order), read before teardown: the traffic really left the namespace. */
  readonly links: { txBytes: number; rxBytes: number }[];
  /** Process ids of the coordinator, the workers and the client (all gone by the time this returns). */
  readonly pids: number[];
}

const WORKER_PORT = 29500;
const CLIENT_PORT = 29501;
/** How long the coordinator gets to shut its workers down before every process is killed. */
const STOP_GRACE_MS = 3000;

/**
 * Multi-host mode on one machine: the coordinator and every worker run as real `seqpar coordinator` and
 * `seqpar worker` processes, each in its own network namespace behind a veth pair (netns-plan.ts), so they talk
 * real TCP across a bridge, optionally through shaped links; a `seqpar attention --coordinator` client sends one
 * request. Everything (processes, namespaces, links, files) is torn down however the run ends, and by a
 * synchronous 'exit' handler if this process exits first. Needs root and iproute2 (see `netnsSupport`).
 */
export async function runNetnsCluster(options: NetnsClusterOptions): Promise<NetnsClusterResult> {
  const support = await netnsSupport();
  if (!support.ok) throw new SeqparError('ERR_TRANSPORT_UNAVAILABLE', `multi-host mode is not available here: ${support.reason}`);
  if (needsNetem(options.shape) && !support.netem) {
    throw new SeqparError('ERR_TRANSPORT_UNAVAILABLE', 'link delay needs tc netem, which this kernel lacks (CONFIG_NET_SCH_NETEM); a rate alone works (tbf)');
  }
  await sweepOrphanNamespaces();
  const plan = planNetns({ workers: options.workers, id: `${process.pid}-${randomBytes(3).toString('hex')}`, ...(options.shape ? { shape: options.shape } : {}) });
  const dir = await mkdtemp(join(tmpdir(), 'seqpar-netns-'));
  const processes: Launched[] = [];
  const onExit = () => {
    for (const launched of processes) launched.child.kill('SIGKILL');
    deleteNamespacesSync(plan.teardown);
  };
  process.once('exit', onExit);
  try {
    const deadline = Date.now() + (options.timeoutMs ?? 120_000);
    for (const argv of plan.setup) await execCommand(argv);
    return await serve(plan, dir, processes, options, deadline);
  } finally {
    await teardown(plan, processes);
    await rm(dir, { recursive: true, force: true });
    process.off('exit', onExit);
  }
}

async function serve(plan: NetnsPlan, dir: string, processes: Launched[], options: NetnsClusterOptions, deadline: number): Promise<NetnsClusterResult> {
  const { request, seqpar, workers } = options;
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const random = seededRandom(request.seed ?? 0);
  const q = randomTensor([request.seq, request.heads, request.headDim], random);
  const k = randomTensor([request.seq, request.kvHeads, request.headDim], random);
  const v = randomTensor([request.seq, request.kvHeads, request.headDim], random);
  await Promise.all([writeNpyFile(join(dir, 'q.npy'), q), writeNpyFile(join(dir, 'k.npy'), k), writeNpyFile(join(dir, 'v.npy'), v)]);

  const inNs = (ns: string, ...args: string[]) => ['ip', 'netns', 'exec', ns, ...seqpar, ...args];
  const health = String(options.healthTimeoutMs ?? 2000);
  const coordinator = launch(
    processes,
    'coordinator',
    inNs(
      plan.coordinatorNs,
      'coordinator',
      '--listen',
      `${plan.coordinatorAddress}:${WORKER_PORT}`,
      '--client-listen',
      `${plan.coordinatorAddress}:${CLIENT_PORT}`,
      '--world-size',
      String(workers),
      '--token-file',
      tokenFile,
      '--health-timeout',
      health,
      '--json',
    ),
  );
  const coordinatorAt = `${plan.coordinatorAddress}:${WORKER_PORT}`;
  plan.workerNs.forEach((ns, rank) =>
    launch(
      processes,
      `worker ${rank}`,
      inNs(
        ns,
        'worker',
        '--coordinator',
        coordinatorAt,
        '--rank',
        String(rank),
        '--world-size',
        String(workers),
        '--token-file',
        tokenFile,
        '--listen-host',
        plan.workerAddresses[rank]!,
        '--health-timeout',
        health,
      ),
    ),
  );
  // The coordinator prints its one JSON line once every worker joined.
  await untilOrFail(() => coordinator.stdout().includes('\n'), processes, deadline, 'the workers to join');

  const files = { out: join(dir, 'out.npy'), lse: join(dir, 'lse.npy'), trace: join(dir, 'trace.json') };
  const attention = ['attention', '--q', join(dir, 'q.npy'), '--k', join(dir, 'k.npy'), '--v', join(dir, 'v.npy'), '--out', files.out, '--lse', files.lse, '--trace', files.trace];
  const client = launch(
    processes,
    'client',
    inNs(
      plan.coordinatorNs,
      ...attention,
      '--strategy',
      request.strategy,
      ...(request.causal ? ['--causal'] : []),
      '--coordinator',
      `${plan.coordinatorAddress}:${CLIENT_PORT}`,
      '--token-file',
      tokenFile,
      '--json',
    ),
  );
  await untilOrFail(
    () => client.child.exitCode !== null,
    processes.filter((p) => p !== client),
    deadline,
    'the request',
  );
  if (client.child.exitCode !== 0) throw new SeqparError('ERR_INTERNAL', `the client failed (exit ${client.child.exitCode}): ${client.stderr().trim()}`);
  return {
    plan,
    q,
    k,
    v,
    out: await readFloat32NpyFile(files.out),
    lse: await readFloat32NpyFile(files.lse),
    summary: JSON.parse(client.stdout()) as Record<string, unknown>,
    trace: JSON.parse(await readFile(files.trace, 'utf8')) as { traceEvents: ChromeTraceEvent[] },
    links: await Promise.all(plan.workerNs.map(linkCounters)),
    pids: processes.map((p) => p.child.pid!),
  };
}

async function linkCounters(ns: string): Promise<{ txBytes: number; rxBytes: number }> {
  const [link] = JSON.parse(await execCommand(['ip', '-n', ns, '-j', '-s', 'link', 'show', 'dev', 'eth0'])) as { stats64: { tx: { bytes: number }; rx: { bytes: number } } }[];
  return { txBytes: link!.stats64.tx.bytes, rxBytes: link!.stats64.rx.bytes };
}

interface Launched {
  readonly name: string;
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
}

/** Output kept per process: enough for a JSON summary and the tail of an error log. */
const OUTPUT_LIMIT = 1 << 20;

function launch(processes: Launched[], name: string, argv: string[]): Launched {
  // No test runner's loader options: the CLI runs compiled JavaScript.
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout = (stdout + chunk.toString()).slice(-OUTPUT_LIMIT)));
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-OUTPUT_LIMIT)));
  child.once('error', (error) => (stderr += `\ncould not start: ${error.message}`));
  const launched = { name, child, stdout: () => stdout, stderr: () => stderr };
  processes.push(launched);
  return launched;
}

/** Polls `done` until the deadline; a watched process exiting first fails the run with its own words. */
async function untilOrFail(done: () => boolean, watched: readonly Launched[], deadline: number, what: string): Promise<void> {
  while (!done()) {
    const dead = watched.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
    if (dead)
      throw new SeqparError(
        'ERR_PEER_LOST',
        `${dead.name} exited (${dead.child.exitCode ?? dead.child.signalCode}) while waiting for ${what}: ${dead.stderr().trim().slice(-2000)}`,
      );
    if (Date.now() > deadline) throw new SeqparError('ERR_TIMEOUT', `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Processes first: the coordinator is asked to stop (it shuts its workers down, so they leave cleanly), then
 * whatever still runs is asked, and after a grace killed and reaped. Then the namespaces, whose deletion takes
 * their veths and the bridge with them.
 */
async function teardown(plan: NetnsPlan, processes: readonly Launched[]): Promise<void> {
  const [coordinator, ...others] = processes;
  if (coordinator) await stop([coordinator]);
  await stop(others);
  const existing = new Set(await seqparNamespaces());
  for (const argv of plan.teardown) if (existing.has(argv[3]!)) await execCommand(argv);
}

async function stop(processes: readonly Launched[]): Promise<void> {
  const running = processes.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
  const exited = running.map((p) => new Promise((resolve) => p.child.once('exit', resolve)));
  for (const p of running) p.child.kill('SIGTERM');
  const graceful = await Promise.race([Promise.all(exited).then(() => true), new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS, false))]);
  if (graceful) return;
  for (const p of running) p.child.kill('SIGKILL');
  await Promise.all(exited);
}
