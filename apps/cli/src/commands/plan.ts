import { availableParallelism, loadavg } from 'node:os';
import { Command, Option } from 'commander';
import { UsageError } from '@seqpar/core';
import {
  calibratedProfilePath,
  choosePlan,
  DEFAULT_HEADS,
  hostProfile,
  loadProfile,
  profileNames,
  writeProfileFile,
  type HardwareProfile,
  type PlanRequest,
} from '@seqpar/planner';
import { calibrateLocalProfile } from '../calibration/calibrate-profile.js';
import type { TransportKind } from '@seqpar/transport';
import { connectCluster } from '@seqpar/runtime';
import { log, printJson } from '../output.js';
import { readTokenFile } from '../token-file.js';
import { intList, nonNegativeInt, positiveInt } from '../options.js';
import { examples } from '../help-examples.js';

/** The request-shape options `plan` and `simulate` share. */
export interface WorkloadOptions {
  seq: number;
  causal: boolean;
  heads: number;
  kvHeads: number;
  headDim: number;
  prefix: number;
  docLens?: number[];
  window?: number;
}

/** `seq` may be optional where the command has something else to do without a request (`plan --calibrate`). */
export function addWorkloadOptions(command: Command, seq: 'required' | 'optional' = 'required'): Command {
  const seqArgs = ['--seq <n>', 'new tokens in the request', positiveInt] as const;
  return (seq === 'required' ? command.requiredOption(...seqArgs) : command.option(...seqArgs))
    .option('--causal', 'causal mask: token i sees tokens j <= i', false)
    .option('--heads <n>', `query heads (default ${DEFAULT_HEADS.heads})`, positiveInt, DEFAULT_HEADS.heads)
    .option('--kv-heads <n>', `key/value heads (default ${DEFAULT_HEADS.kvHeads})`, positiveInt, DEFAULT_HEADS.kvHeads)
    .option('--head-dim <n>', `head dimension (default ${DEFAULT_HEADS.headDim})`, positiveInt, DEFAULT_HEADS.headDim)
    .option('--prefix <n>', 'cached tokens the request attends to (prefill after a prompt cache, or decode)', nonNegativeInt, 0)
    .option('--doc-lens <L1,L2,...>', 'documents packed back to back (lengths sum to --seq): only pairs within a document are priced', intList)
    .option('--window <W>', 'sliding window (with --causal): token i sees tokens i-W < j <= i, and only those pairs are priced', nonNegativeInt);
}

export const requestOf = (o: WorkloadOptions): PlanRequest => ({
  seq: o.seq,
  prefix: o.prefix,
  causal: o.causal,
  heads: o.heads,
  kvHeads: o.kvHeads,
  headDim: o.headDim,
  ...(o.docLens ? { documents: o.docLens } : {}),
  ...(o.window !== undefined ? { window: o.window } : {}),
});

/** The mask options as given, for a command's --json (absent when not given). */
export const maskOf = (o: WorkloadOptions): { documents?: number[]; window?: number } => ({
  ...(o.docLens ? { documents: o.docLens } : {}),
  ...(o.window !== undefined ? { window: o.window } : {}),
});

interface PlanOptions extends Omit<WorkloadOptions, 'seq'> {
  seq?: number;
  workers: number;
  profile?: string;
  json: boolean;
  calibrate: boolean;
  transport: TransportKind;
  threads?: number;
  coordinator?: string;
  tokenFile?: string;
}

const TRANSPORTS = ['inproc', 'shm', 'ws'] as const satisfies readonly TransportKind[];

export function register(program: Command): void {
  const command = program
    .command('plan')
    .summary('pick a strategy, degree and pass-KV/pass-Q for a request from a hardware profile')
    .description(
      'Predicts every strategy at its best degree (<= --workers) with the cost model and prints the fastest that fits\n' +
        'in device memory, with a table of the alternatives. Heads default to 8 query / 8 kv / head dim 64.',
    )
    .option('--workers <n>', 'workers (devices) available', positiveInt, 1)
    .option('--profile <name|file.json>', `hardware profile: ${profileNames().join(', ')}, or a profile JSON file (default: calibrated if saved, else local)`)
    .option(
      '--calibrate',
      `measure this host's kernel, memory and transport, save the profile (${calibratedProfilePath()}; SEQPAR_PROFILE overrides) and plan --seq with it if given`,
      false,
    )
    .addOption(new Option('--transport <kind>', 'with --calibrate: the transport to measure').choices(TRANSPORTS).default('inproc'))
    .option('--threads <n>', 'with --calibrate: ONNX Runtime intra-op threads per worker', positiveInt)
    .option('--coordinator <host:port>', 'plan for a cluster that is already up: its worker count and transport')
    .option('--token-file <file>', "the cluster's shared token (with --coordinator)")
    .option('--json', 'print one JSON object (strategy, degree, predictedMs, alternatives, ...) on stdout', false)
    .addHelpText(
      'after',
      examples(
        'seqpar plan --seq 65536 --causal --workers 4   # the pick and a table of alternatives',
        'seqpar plan --seq 8192 --workers 8 --profile h100-nvlink --json',
        'seqpar plan --seq 16384 --causal --window 1024 --workers 2   # priced as the pairs the window leaves',
        'seqpar plan --calibrate --seq 16384 --workers 2   # measure this host first (about a minute)',
        'seqpar plan --seq 32768 --causal --coordinator hostA:29501 --token-file token   # for a running cluster',
      ),
    );
  addWorkloadOptions(command, 'optional').action(async (options: PlanOptions) => {
    if (options.calibrate && options.profile !== undefined) throw new UsageError('--calibrate writes the calibrated profile; it takes no --profile');
    const calibrated = options.calibrate ? await calibrate(options) : undefined;
    if (options.seq === undefined) {
      if (!calibrated) throw new UsageError("required option '--seq <n>' not specified");
      if (options.json) printJson({ calibrated: calibrated.path, profile: calibrated.profile });
      else process.stdout.write(`calibrated profile written to ${calibrated.path}\n`);
      return;
    }
    const cluster = options.coordinator ? await describeCluster(options.coordinator, options.tokenFile) : undefined;
    const workers = cluster?.workers ?? options.workers;
    const profile = calibrated?.profile ?? (options.profile ? loadProfile(options.profile) : hostProfile(cluster?.transport ?? 'inproc'));
    const plan = choosePlan(requestOf({ ...options, seq: options.seq }), profile, { maxWorkers: workers });
    if (options.json) {
      printJson({
        ...plan,
        seq: options.seq,
        prefix: options.prefix,
        causal: options.causal,
        ...maskOf({ ...options, seq: options.seq }),
        workers,
        ...(calibrated ? { calibrated: calibrated.path } : {}),
      });
      return;
    }
    log(`profile ${profile.name}: ${profile.source}`);
    process.stdout.write(
      `plan: ${withU(plan)} on ${plan.degree} worker(s), ${plan.layout} layout, ${plan.passKvOrQ}, ` +
        `predicted ${formatMs(plan.predictedMs)}, ${formatBytes(plan.peakMemoryBytes)} per rank\n` +
        (plan.note ? `note: ${plan.note}\n` : '') +
        '\n' +
        table(
          ['strategy', 'degree', 'predicted', 'memory/rank', 'note'],
          plan.alternatives.map((a) => [withU(a), String(a.degree), formatMs(a.predictedMs), formatBytes(a.peakMemoryBytes), a.reason ?? '']),
        ),
    );
  });
}

/** usp's name with its ulysses degree (the ranks per all-to-all group). */
const withU = (a: { strategy: string; ulyssesDegree: number }): string => (a.strategy === 'usp' ? `usp U=${a.ulyssesDegree}` : a.strategy);

/** The worker count and transport of a running cluster; the connection is closed again. */
async function describeCluster(coordinator: string, tokenFile: string | undefined): Promise<{ workers: number; transport: string }> {
  const cluster = await connectCluster({ coordinator, token: await readTokenFile(tokenFile) });
  try {
    return { workers: cluster.workers, transport: cluster.transport };
  } finally {
    await cluster.close();
  }
}

async function calibrate(options: PlanOptions): Promise<{ path: string; profile: HardwareProfile }> {
  log(`calibrating this host (${options.transport} transport): about a minute on 2 idle cores (56 s measured), longer on a busy host`);
  const busy = hostBusy();
  if (busy) log(`warning: ${busy}: the timings will be slow and the plans made from them too cautious; calibrate when the host is idle`);
  const profile = await calibrateLocalProfile({ transport: options.transport, ...(options.threads ? { threads: options.threads } : {}), log });
  const path = calibratedProfilePath();
  writeProfileFile(path, profile);
  log(`profile written to ${path}`);
  return { path, profile };
}

/** Why the host is busy (the 1-minute load average above its cores), or undefined. */
function hostBusy(): string | undefined {
  const [load] = loadavg();
  const cores = availableParallelism();
  return load! > cores ? `this host is busy (load average ${load!.toFixed(1)} on ${cores} cores)` : undefined;
}

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  return ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(1)} us`;
}

function formatBytes(bytes: number): string {
  return bytes === 0 ? '-' : bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** A left-aligned text table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
