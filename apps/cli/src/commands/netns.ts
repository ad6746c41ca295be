import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { referenceAttention, STRATEGY_NAMES, type StrategyName } from '@seqpar/core';
import { runNetnsCluster, type LinkShape } from '@seqpar/sim';
import { log, printJson } from '../output.js';
import { nonNegativeNumber, oneOf, positiveInt, seconds } from '../options.js';
import { checkWritable } from '../output-paths.js';
import { examples } from '../help-examples.js';

interface NetnsOptions {
  workers: number;
  strategy: StrategyName;
  seq: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  causal: boolean;
  delayMs?: number;
  jitterMs?: number;
  rateMbit?: number;
  trace?: string;
  timeout: number;
  json: boolean;
}

/** This CLI's own entry: the harness runs `seqpar coordinator`, `worker` and `attention` inside the namespaces. */
const SEQPAR_BIN = fileURLToPath(new URL('../../bin/seqpar.js', import.meta.url));

export function register(program: Command): void {
  program
    .command('netns')
    .summary('one request on a cluster of real seqpar processes, each in its own Linux network namespace')
    .description(
      'Multi-host mode on one machine: `seqpar coordinator`, one `seqpar worker` per rank and a `seqpar attention\n' +
        '--coordinator` client, each in a network namespace of its own behind a veth pair and a bridge, so ranks talk\n' +
        "real TCP; each worker's outgoing link can be shaped with tc (a rate alone: tbf; a delay: netem). Prints the\n" +
        "client's summary, the error against an fp64 reference and the bytes each worker's link carried. Everything\n" +
        'is torn down however the run ends (Ctrl-C included). Needs Linux, root and iproute2.',
    )
    .option('--workers <n>', 'worker processes, each in its own namespace', positiveInt, 2)
    .option('--strategy <name>', `sharding strategy: ${STRATEGY_NAMES.join(', ')}`, oneOf(STRATEGY_NAMES), 'ring')
    .option('--seq <n>', 'tokens of the random request', positiveInt, 1024)
    .option('--heads <n>', 'query heads', positiveInt, 4)
    .option('--kv-heads <n>', 'key/value heads', positiveInt, 2)
    .option('--head-dim <n>', 'head dimension', positiveInt, 32)
    .option('--causal', 'causal mask', false)
    .option('--delay-ms <ms>', "one-way delay added to each worker's outgoing packets (tc netem)", nonNegativeNumber)
    .option('--jitter-ms <ms>', 'variation around --delay-ms (tc netem)', nonNegativeNumber)
    .option('--rate-mbit <r>', "cap on each worker's outgoing rate, Mbit/s (tc tbf, or netem with a delay)", nonNegativeNumber)
    .option('--trace <file>', 'write the merged Perfetto trace of the request')
    .option('--timeout <seconds>', 'bound on the whole run, setup to teardown', seconds, 120_000)
    .option('--json', 'print one JSON object (the client summary, error against fp64, links, namespaces) on stdout', false)
    .addHelpText(
      'after',
      examples(
        'sudo seqpar netns   # ring, 2 workers, 1024 tokens, unshaped links',
        'sudo seqpar netns --workers 4 --strategy zigzag --causal --seq 4096 --rate-mbit 100 --trace netns-trace.json',
        'sudo seqpar netns --delay-ms 5 --jitter-ms 1 --json   # needs tc netem in the kernel',
      ),
    )
    .action(async (options: NetnsOptions) => netnsCommand(options));
}

async function netnsCommand(options: NetnsOptions): Promise<void> {
  await checkWritable({ '--trace': options.trace });
  const shape: LinkShape = {
    ...(options.delayMs !== undefined ? { delayMs: options.delayMs } : {}),
    ...(options.jitterMs !== undefined ? { jitterMs: options.jitterMs } : {}),
    ...(options.rateMbit !== undefined ? { rateMbit: options.rateMbit } : {}),
  };
  const result = await runNetnsCluster({
    workers: options.workers,
    seqpar: [process.execPath, SEQPAR_BIN],
    request: { seq: options.seq, heads: options.heads, kvHeads: options.kvHeads, headDim: options.headDim, strategy: options.strategy, causal: options.causal },
    timeoutMs: options.timeout,
    ...(Object.keys(shape).length ? { shape } : {}),
  });
  if (options.trace) await writeFile(options.trace, JSON.stringify(result.trace));
  const reference = referenceAttention(result.q, result.k, result.v, { kind: options.causal ? 'causal-inclusive' : 'none' });
  const error = { out: maxAbsDiff(result.out.data, reference.out), lse: maxAbsDiff(result.lse.data, reference.lse) };
  const namespaces = [result.plan.coordinatorNs, ...result.plan.workerNs];
  if (options.json) {
    printJson({ ...result.summary, error, links: result.links, namespaces });
    return;
  }
  const wallMs = Number(result.summary['wallMs']);
  log(`${options.strategy} on ${options.workers} worker(s) in network namespaces (${namespaces.join(', ')}, torn down)`);
  log(`wall ${wallMs.toFixed(1)} ms; largest difference from the fp64 reference: out ${error.out.toExponential(2)}, lse ${error.lse.toExponential(2)}`);
  result.links.forEach((link, rank) => log(`rank ${rank} link: sent ${link.txBytes} bytes, received ${link.rxBytes}`));
  if (options.trace) log(`trace written to ${options.trace}`);
}

function maxAbsDiff(a: Float32Array, b: Float64Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}
