import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { UsageError, writeNpyFile } from '@seqpar/core';
import type { Device } from '@seqpar/kernels';
import { generateTokens, loadModel, makeTinyModel, readModelConfig, type GenerateEvent, type GenerateSummary, type ModelConfig, type TextTokenizer } from '@seqpar/model';
import { connectCluster, createCluster, type ClusterGenerateOptions, type RemoteCluster } from '@seqpar/runtime';
import type { StrategyName } from '@seqpar/strategies';
import { chooseAuto, type AutoChoice } from '../auto-strategy.js';
import { log, printJson } from '../output.js';
import { nonNegativeInt, positiveInt, positiveNumber, seconds, unitFraction } from '../options.js';
import { readPrompt } from '../prompt-input.js';
import { noteSingle, STRATEGIES, TRANSPORTS } from '../run-attention.js';
import { removeOnInterrupt } from '../interrupt.js';
import { checkWritable } from '../output-paths.js';
import { readTokenFile } from '../token-file.js';
import { examples } from '../help-examples.js';

interface GenerateCommandOptions {
  model?: string;
  prompt?: string;
  promptFile?: string;
  promptTokens?: string;
  maxNewTokens: number;
  workers: number;
  strategy: StrategyName | 'auto';
  transport: (typeof TRANSPORTS)[number];
  coordinator?: string;
  tokenFile?: string;
  greedy: boolean;
  temperature?: number;
  topP?: number;
  seed: number;
  dumpLogits?: string;
  json: boolean;
  threads?: number;
  device: Device;
  demo: boolean;
  timeout?: number;
}

export function register(program: Command): void {
  program
    .command('generate')
    .summary('long-context generation: sequence-parallel prefill, then decoding over a sharded KV cache')
    .description(
      'Runs a Hugging Face Llama-family model directory (llama, mistral, qwen2; F32/F16/BF16 safetensors).\n' +
        'The prompt is sharded across workers by --strategy for prefill; each worker keeps its share of the KV\n' +
        'cache and decoding uses pass-Q attention. Tokens stream to stdout; progress and metrics go to stderr.\n' +
        'Try `seqpar generate --demo`: it makes a tiny model and a long prompt, no files needed.',
    )
    .option('--model <dir>', 'model directory (config.json, model.safetensors, tokenizer.json)')
    .option('--prompt <text>', 'prompt text (needs tokenizer.json)')
    .option('--prompt-file <file>', 'read the prompt text from a file')
    .option('--prompt-tokens <file>', 'a JSON array of token ids')
    .option('--max-new-tokens <n>', 'tokens to generate (stops early at eos)', positiveInt, 32)
    .option('--workers <n>', 'workers to shard the sequence over', positiveInt, 2)
    .addOption(new Option('--strategy <name>', 'prefill strategy (auto: the planner picks it and the degree)').choices(STRATEGIES).default('zigzag'))
    .addOption(new Option('--transport <kind>', 'inproc: ranks on threads of this process; shm or ws: one worker process per rank').choices(TRANSPORTS).default('inproc'))
    .option('--coordinator <host:port>', 'run on a cluster that is already up (the model directory must exist at the same path on every host)')
    .option('--token-file <file>', "the cluster's shared token (with --coordinator)")
    .option('--greedy', 'always take the most likely token (the default without --temperature)', false)
    .option('--temperature <t>', 'sample with this temperature', positiveNumber)
    .option('--top-p <p>', 'nucleus sampling threshold in (0, 1]', unitFraction)
    .option('--seed <k>', 'sampling seed', nonNegativeInt, 0)
    .option('--dump-logits <file>', 'write the prefill logits of every prompt position, [S, vocab] float32 .npy')
    .option('--json', 'print one JSON object (tokens, timings) instead of streaming text', false)
    .option('--threads <n>', 'ONNX Runtime intra-op threads per worker', positiveInt)
    .addOption(new Option('--device <device>', 'execution provider').choices(['cpu', 'cuda']).default('cpu'))
    .option('--demo', 'make a tiny model and a long synthetic prompt in a temp folder and run them', false)
    .option('--timeout <seconds>', 'fail with ERR_TIMEOUT when a step waits longer than this (default 600)', seconds)
    .addHelpText(
      'after',
      examples(
        'seqpar generate --demo   # a tiny model and a long prompt, no files needed',
        'seqpar make-tiny-model --out tiny-model',
        'seqpar generate --model tiny-model --prompt "Hello" --max-new-tokens 16 --workers 2 --strategy zigzag',
        'seqpar generate --model /models/llama --prompt-file doc.txt --max-new-tokens 64 --greedy --coordinator hostA:29501 --token-file token',
      ),
    )
    .action(async (options: GenerateCommandOptions) => (options.demo ? runDemo(options) : generateCommand(options)));
}

async function runDemo(options: GenerateCommandOptions): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'seqpar-demo-'));
  using _removal = removeOnInterrupt(dir);
  try {
    log(`demo: writing a tiny 4-layer model to ${dir}`);
    await makeTinyModel(dir, { layers: 4, hidden: 256, heads: 8, kvHeads: 2, vocab: 512, seed: 1 });
    const sentence = 'Sequence parallelism shards a long context across workers, and exact attention stitches it back together. ';
    await generateCommand({ ...options, model: dir, prompt: options.prompt ?? sentence.repeat(40), promptFile: undefined, promptTokens: undefined });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function generateCommand(options: GenerateCommandOptions): Promise<void> {
  if (!options.model) throw new UsageError('--model is required (or use --demo)');
  await checkWritable({ '--dump-logits': options.dumpLogits });
  const config = await readModelConfig(options.model);
  const { ids, tokenizer } = await readPrompt(options.model, options);
  // With --coordinator the cluster is already up elsewhere: this process only connects to it (and leaves it running).
  const remote = options.coordinator ? await connectCluster({ coordinator: options.coordinator, token: await readTokenFile(options.tokenFile) }) : undefined;
  try {
    const auto = options.strategy === 'auto' ? autoChoice(config, ids.length, options, remote) : undefined;
    const strategy = auto?.strategy ?? (options.strategy as StrategyName);
    const workers = strategy === 'single' ? 1 : (remote?.workers ?? auto?.workers ?? options.workers);
    const where = remote ? `the cluster at ${options.coordinator}` : options.transport === 'inproc' ? 'in-process ranks' : `${options.transport} worker processes`;
    if (!auto && !remote) noteSingle(strategy, options.workers);
    const cluster =
      remote || options.transport === 'inproc' ? undefined : await createCluster({ workers, transport: options.transport, device: options.device, threads: options.threads ?? 1 });
    try {
      const request = generateOptions(options, strategy, ids.length, `prefill: ${ids.length} tokens across ${workers} worker(s) (${where}) with ${strategy}`);
      const run = remote
        ? remote.generate(options.model, ids, request)
        : cluster
          ? cluster.generate(options.model, ids, request)
          : generateTokens(await loadModel(options.model), ids, { ...request, workers, execution: { device: options.device, threads: options.threads ?? 1 } });
      const fields = { transport: remote?.transport ?? options.transport, promptTokens: ids.length, ...(auto ? { plan: auto.plan } : {}) };
      await printGeneration(run, options, tokenizer, fields);
    } finally {
      await cluster?.close();
    }
  } finally {
    await remote?.close();
  }
}

function autoChoice(config: ModelConfig, seq: number, options: GenerateCommandOptions, remote: RemoteCluster | undefined): AutoChoice {
  const { numHeads: heads, numKvHeads: kvHeads, headDim } = config;
  return chooseAuto({
    seq,
    heads,
    kvHeads,
    headDim,
    causal: true,
    workers: remote?.workers ?? options.workers,
    transport: remote?.transport ?? options.transport,
    fixedDegree: remote !== undefined,
  });
}

/**
 * The generation request shared by every path, with the prefill progress bar (lines when stderr is no terminal).
 * The banner waits for the first progress: by then every check of the request has passed.
 */
function generateOptions(options: GenerateCommandOptions, strategy: StrategyName, seq: number, banner: string): ClusterGenerateOptions {
  const live = !options.json && process.stderr.isTTY;
  const bar = live ? new SingleBar({ format: 'prefill [{bar}] {value}/{total} tokens | {speed} tok/s | ETA {eta_formatted}', hideCursor: true }) : undefined;
  const started = performance.now();
  let bannerShown = false;
  return {
    strategy,
    maxNewTokens: options.maxNewTokens,
    greedy: options.greedy,
    seed: options.seed,
    allLogits: options.dumpLogits !== undefined,
    ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
    ...(options.topP === undefined ? {} : { topP: options.topP }),
    ...(options.timeout === undefined ? {} : { timeoutMs: options.timeout }),
    onPrefillProgress: (done, total) => {
      if (!bannerShown) log(banner);
      bannerShown = true;
      const rate = done / ((performance.now() - started) / 1000);
      if (!bar) return log(`prefill: ${done}/${total} tokens · ${rate.toFixed(0)} tok/s · ETA ${((total - done) / rate).toFixed(1)} s`);
      if (!bar.isActive) bar.start(total, 0, { speed: '0' });
      bar.update(done, { speed: rate.toFixed(0) });
      if (done === seq) bar.stop();
    },
  };
}

/** Streams the tokens to stdout (text when there is a tokenizer), then the metrics on stderr or one JSON object. */
async function printGeneration(
  run: AsyncGenerator<GenerateEvent, GenerateSummary>,
  options: GenerateCommandOptions,
  tokenizer: TextTokenizer | undefined,
  jsonFields: Record<string, unknown>,
): Promise<void> {
  const streamed = new TextStream(tokenizer);
  let summary: GenerateSummary;
  for (;;) {
    const next = await run.next();
    if (next.done) {
      summary = next.value;
      break;
    }
    if (!options.json) process.stdout.write(streamed.push(next.value.token));
  }
  if (!options.json) process.stdout.write('\n');
  if (options.dumpLogits) await writeNpyFile(options.dumpLogits, summary.promptLogits!);
  const text = tokenizer?.decode(summary.tokens);
  if (options.json) {
    const { promptLogits: _, ...fields } = summary;
    printJson({ ...fields, ...jsonFields, ...(text === undefined ? {} : { text }) });
  } else {
    log(
      `TTFT ${summary.ttftMs.toFixed(0)} ms · prefill ${summary.prefillTokensPerSec.toFixed(0)} tok/s · ` +
        `decode ${summary.decodeTokensPerSec.toFixed(1)} tok/s (${summary.decodeMsPerToken.toFixed(1)} ms/token) · ` +
        `peak RSS ${Math.max(...summary.ranks.map((rank) => rank.peakRssMb)).toFixed(0)} MiB`,
    );
    log(`KV cache per rank: ${summary.kvCacheMb.map((mb, rank) => `rank ${rank} ${mb.toFixed(1)} MiB`).join(', ')}`);
  }
}

/** Decodes a growing token list and hands out only the new text, so multi-byte characters print whole. */
class TextStream {
  private readonly ids: number[] = [];
  private printed = '';

  constructor(private readonly tokenizer?: TextTokenizer) {}

  push(token: number): string {
    if (!this.tokenizer) return `${token} `;
    this.ids.push(token);
    const text = this.tokenizer.decode(this.ids);
    if (text.endsWith('\uFFFD')) return '';
    const fresh = text.slice(this.printed.length);
    this.printed = text;
    return fresh;
  }
}
