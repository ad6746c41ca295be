import { Command, Option } from 'commander';
import { attentionShape, UsageError, type Tensor } from '@seqpar/core';
import { log, printJson } from '../output.js';
import { intList, oneOf, positiveInt, nonNegativeInt, seconds } from '../options.js';
import type { Fault, LinkSpec } from '@seqpar/transport';
import { loadAttentionInputs, saveAttentionOutputs } from '../attention-io.js';
import { collectFault, collectLink, FAULT_HELP, LINK_HELP } from '../network-options.js';
import { checkWritable } from '../output-paths.js';
import { randomQkv, type QkvShape } from '../random-qkv.js';
import { checkRequestFits } from '../request-memory.js';
import { runAttention, STRATEGIES, TRANSPORTS } from '../run-attention.js';
import { examples } from '../help-examples.js';

interface AttentionOptions {
  q?: string;
  k?: string;
  v?: string;
  out?: string;
  lse?: string;
  causal: boolean;
  docLens?: number[];
  window?: number;
  strategy: (typeof STRATEGIES)[number];
  ulyssesDegree?: number;
  workers: number;
  transport: (typeof TRANSPORTS)[number];
  threads?: number;
  device: 'cpu' | 'cuda';
  json: boolean;
  trace?: string;
  random: boolean;
  seq?: number;
  heads?: number;
  kvHeads?: number;
  headDim?: number;
  seed: number;
  coordinator?: string;
  tokenFile?: string;
  link?: LinkSpec;
  fault?: Fault[];
  checksum: boolean;
  timeout?: number;
}

export function register(program: Command): void {
  program
    .command('attention')
    .summary('exact attention of q, k, v (.npy or random) with a sharding strategy')
    .description(
      'Computes out = softmax(q k^T / sqrt(D)) v with its log-sum-exp, sharded by sequence across workers.\n' +
        'Shapes: q [S, Hq, D], k and v [S, Hkv, D] (Hq a multiple of Hkv: GQA), out [S, Hq, D], lse [Hq, S].',
    )
    .option('--q <file>', 'queries, float32 .npy [S, Hq, D]')
    .option('--k <file>', 'keys, float32 .npy [S, Hkv, D]')
    .option('--v <file>', 'values, float32 .npy [S, Hkv, D]')
    .option('--out <file>', 'write the output here, float32 .npy [S, Hq, D]')
    .option('--lse <file>', 'also write the log-sum-exp, float32 .npy [Hq, S]')
    .option('--causal', 'causal mask: token i sees tokens j <= i', false)
    .option('--doc-lens <L1,L2,...>', 'documents packed back to back (lengths sum to S): a token sees only its own document', intList)
    .option('--window <W>', 'sliding window (with --causal): token i sees tokens i-W < j <= i', nonNegativeInt)
    .addOption(new Option('--strategy <name>', 'how to shard the work').choices(STRATEGIES).default('single'))
    .option('--ulysses-degree <u>', 'usp: workers per all-to-all group (divides --workers and the kv heads)', positiveInt)
    .option('--workers <n>', 'number of workers (devices)', positiveInt, 1)
    .addOption(new Option('--transport <kind>', 'how workers exchange blocks').choices(TRANSPORTS).default('inproc'))
    .option('--threads <n>', 'ONNX Runtime intra-op threads per worker', positiveInt)
    .addOption(new Option('--device <device>', 'execution provider').argParser(oneOf(['cpu', 'cuda'] as const)).default('cpu'))
    .option('--json', 'print one JSON object with timings and per-rank stats on stdout', false)
    .option('--trace <file>', 'write a Chrome trace-event JSON (open in Perfetto)')
    .option('--random', 'generate q, k, v instead of reading files (needs --seq --heads --kv-heads --head-dim)', false)
    .option('--seq <n>', 'sequence length for --random', positiveInt)
    .option('--heads <n>', 'query heads for --random', positiveInt)
    .option('--kv-heads <n>', 'key/value heads for --random', positiveInt)
    .option('--head-dim <n>', 'head dimension for --random', positiveInt)
    .option('--seed <k>', 'seed for --random', nonNegativeInt, 0)
    .option('--coordinator <host:port>', 'run on a cluster that is already up (see `seqpar coordinator`)')
    .option('--token-file <file>', "the cluster's shared token (with --coordinator)")
    .option('--link <spec>', LINK_HELP, collectLink)
    .option('--fault <spec>', FAULT_HELP, collectFault)
    .option('--checksum', 'CRC32 and sequence number on every frame (on with --link or --fault)', false)
    .option('--timeout <seconds>', 'fail with ERR_TIMEOUT when the request takes longer (default 60)', seconds)
    .addHelpText(
      'after',
      examples(
        'seqpar attention --random --seq 8192 --heads 8 --kv-heads 2 --head-dim 64 --causal --strategy zigzag --workers 4 --json',
        'seqpar attention --q q.npy --k k.npy --v v.npy --causal --out out.npy --lse lse.npy --strategy auto --workers 2   # q/k/v from `seqpar make-qkv`',
        'seqpar attention --random --seq 4096 --heads 8 --kv-heads 8 --head-dim 64 --workers 2 --transport ws --link latency=2,bandwidth=1G --fault kill:1@3',
        'seqpar attention --random --seq 8192 --heads 8 --kv-heads 8 --head-dim 64 --causal --coordinator hostA:29501 --token-file token   # on a running cluster',
      ),
    )
    .action(async (options: AttentionOptions) => attentionCommand(options));
}

async function attentionCommand(options: AttentionOptions): Promise<void> {
  // Everything the command line decides is checked before a tensor is made or a worker started.
  if (options.random && (options.q || options.k || options.v)) throw new UsageError('--random and --q/--k/--v are exclusive');
  if (!options.random && !options.out) throw new UsageError('--out is required when reading --q/--k/--v');
  await checkWritable({ '--out': options.out, '--lse': options.lse, '--trace': options.trace });
  const explicit = options.strategy === 'auto' ? undefined : options.strategy;
  const fits = (shape: QkvShape) =>
    checkRequestFits({ ...shape, causal: options.causal, strategy: explicit, workers: options.workers, transport: options.transport, remote: !!options.coordinator });
  const [q, k, v] = options.random ? randomInputs(options, fits) : await loadAttentionInputs(options.q, options.k, options.v);
  const shape = attentionShape(q, k, v);
  if (shape.sq !== shape.sk) {
    throw new UsageError(`q has ${shape.sq} tokens but k and v have ${shape.sk}: self-attention needs the same S`, 'ERR_SHAPE_MISMATCH');
  }
  if (!options.random) fits({ seq: shape.sq, heads: shape.hq, kvHeads: shape.hkv, headDim: shape.d });
  const { link, fault, docLens, ...rest } = options;
  const network = { ...(link ? { links: link } : {}), ...(fault ? { faults: { faults: fault, seed: options.seed } } : {}), ...(options.checksum ? { checksum: true } : {}) };
  const result = await runAttention({ ...rest, ...(docLens ? { documents: docLens } : {}), q, k, v, network });
  if (options.out) await saveAttentionOutputs(options.out, options.lse, result.out, result.lse);
  const summary = {
    strategy: result.strategy,
    workers: result.workers,
    transport: result.transport,
    device: options.device,
    seq: shape.sq,
    heads: shape.hq,
    kvHeads: shape.hkv,
    headDim: shape.d,
    causal: options.causal,
    ...(docLens ? { documents: docLens } : {}),
    ...(options.window !== undefined ? { window: options.window } : {}),
    wallMs: result.wallMs,
    ranks: result.ranks,
    ...(result.plan ? { plan: result.plan } : {}),
  };
  if (options.json) printJson(summary);
  else log(`${result.strategy} on ${result.workers} worker(s), S=${shape.sq}: ${result.wallMs.toFixed(1)} ms`);
}

function randomInputs(options: AttentionOptions, fits: (shape: QkvShape) => void): [Tensor, Tensor, Tensor] {
  const { seq, heads, kvHeads, headDim } = options;
  if (seq === undefined || heads === undefined || kvHeads === undefined || headDim === undefined) {
    throw new UsageError('--random needs --seq, --heads, --kv-heads and --head-dim');
  }
  const shape = { seq, heads, kvHeads, headDim };
  fits(shape);
  return randomQkv(shape, options.seed);
}
