import { Command, Option } from 'commander';
import { attentionShape, randomTensor, seededRandom, UsageError, type Tensor } from '@seqpar/core';
import { log, printJson } from '../output.js';
import { oneOf, positiveInt, nonNegativeInt } from '../options.js';
import type { Fault, LinkSpec } from '@seqpar/transport';
import { loadAttentionInputs, saveAttentionOutputs } from '../attention-io.js';
import { collectFault, collectLink, FAULT_HELP, LINK_HELP } from '../network-options.js';
import { runAttention, STRATEGIES, TRANSPORTS } from '../run-attention.js';

interface AttentionOptions {
  q?: string;
  k?: string;
  v?: string;
  out?: string;
  lse?: string;
  causal: boolean;
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
    .action(async (options: AttentionOptions) => attentionCommand(options));
}

async function attentionCommand(options: AttentionOptions): Promise<void> {
  const [q, k, v] = options.random ? randomInputs(options) : await loadAttentionInputs(options.q, options.k, options.v);
  const shape = attentionShape(q, k, v);
  if (shape.sq !== shape.sk) {
    throw new UsageError(`q has ${shape.sq} tokens but k and v have ${shape.sk}: self-attention needs the same S`, 'ERR_SHAPE_MISMATCH');
  }
  if (!options.random && !options.out) throw new UsageError('--out is required when reading --q/--k/--v');
  const { link, fault, ...rest } = options;
  const network = { ...(link ? { links: link } : {}), ...(fault ? { faults: { faults: fault, seed: options.seed } } : {}), ...(options.checksum ? { checksum: true } : {}) };
  const result = await runAttention({ ...rest, q, k, v, network });
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
    wallMs: result.wallMs,
    ranks: result.ranks,
    ...(result.plan ? { plan: result.plan } : {}),
  };
  if (options.json) printJson(summary);
  else log(`${result.strategy} on ${result.workers} worker(s), S=${shape.sq}: ${result.wallMs.toFixed(1)} ms`);
}

function randomInputs(options: AttentionOptions): [Tensor, Tensor, Tensor] {
  const { seq, heads, kvHeads, headDim } = options;
  if (seq === undefined || heads === undefined || kvHeads === undefined || headDim === undefined) {
    throw new UsageError('--random needs --seq, --heads, --kv-heads and --head-dim');
  }
  if (options.q || options.k || options.v) throw new UsageError('--random and --q/--k/--v are exclusive');
  const random = seededRandom(options.seed);
  return [randomTensor([seq, heads, headDim], random), randomTensor([seq, kvHeads, headDim], random), randomTensor([seq, kvHeads, headDim], random)];
}
