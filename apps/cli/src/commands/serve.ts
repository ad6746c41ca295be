import { once } from 'node:events';
import { Command, InvalidArgumentError, Option } from 'commander';
import { UsageError, type StrategyName } from '@seqpar/core';
import type { Device } from '@seqpar/kernels';
import { checkPrefillChunk, connectCluster, createCluster, type ClusterClient } from '@seqpar/runtime';
import { DEFAULT_PREFILL_CHUNK, startServer } from '@seqpar/serve';
import { log, printJson } from '../output.js';
import { nonNegativeInt, positiveInt } from '../options.js';
import { STRATEGIES, TRANSPORTS } from '../run-attention.js';
import { readTokenFile } from '../token-file.js';
import { examples } from '../help-examples.js';

interface ServeCommandOptions {
  model: string;
  modelId?: string;
  listen: { host: string; port: number };
  workers: number;
  transport: (typeof TRANSPORTS)[number];
  strategy: StrategyName | 'auto';
  coordinator?: string;
  tokenFile?: string;
  apiKeyFile?: string;
  maxQueue: number;
  maxBatch: number;
  prefillChunk: number;
  shardFrom: number;
  kvBudgetMb?: number;
  threads: number;
  device: Device;
  json: boolean;
}

export function register(program: Command): void {
  program
    .command('serve')
    .summary('serve a model over the OpenAI HTTP API (completions, chat, streaming) on a sharded cluster')
    .description(
      'POST /v1/completions and /v1/chat/completions (the chat template from tokenizer_config.json), GET /v1/models,\n' +
        '/health and /metrics (Prometheus). The planner picks the sharding per prompt with --strategy auto. Runs until\n' +
        'SIGINT or SIGTERM. Listens on 127.0.0.1 unless --listen says otherwise.',
    )
    .requiredOption('--model <dir>', 'model directory (config.json, safetensors; tokenizer.json for text prompts)')
    .option('--model-id <name>', 'the id /v1/models lists (default: the directory name)')
    .option('--listen <host:port>', 'where to take requests (a bare port means 127.0.0.1)', listenAddress, { host: '127.0.0.1', port: 8000 })
    .option('--workers <n>', 'local workers to start', positiveInt, 2)
    .addOption(new Option('--transport <kind>', 'inproc: ranks in this process; shm or ws: one worker process per rank').choices(TRANSPORTS).default('inproc'))
    .addOption(new Option('--strategy <name>', 'prefill strategy (auto: the planner picks it per prompt)').choices(STRATEGIES).default('auto'))
    .option('--coordinator <host:port>', 'serve on a cluster that is already up (its client port) instead of starting workers')
    .option('--token-file <file>', "the cluster's shared token (with --coordinator)")
    .option('--api-key-file <file>', 'require this bearer key on /v1 routes')
    .option('--max-queue <n>', 'requests that may wait; more get 429', nonNegativeInt, 64)
    .option('--max-batch <n>', 'requests running at once, their decode steps batched together', positiveInt, 16)
    .option(
      '--prefill-chunk <rows>',
      'query rows per compute call of a prefill (a multiple of 64): requests beside a long prefill wait at most one call',
      positiveInt,
      DEFAULT_PREFILL_CHUNK,
    )
    .option('--shard-from <tokens>', 'with --strategy auto, shorter prompts run unsharded on one worker', positiveInt, 8192)
    .option('--kv-budget-mb <mb>', 'KV cache one rank may hold; a longer request gets 413, running ones share it (default: a quarter of memory over the workers)', positiveInt)
    .option('--threads <n>', 'ONNX Runtime intra-op threads per worker', positiveInt, 1)
    .addOption(new Option('--device <device>', 'execution provider').choices(['cpu', 'cuda']).default('cpu'))
    .option('--json', 'print one JSON line with the URL on stdout once listening', false)
    .addHelpText(
      'after',
      examples(
        'seqpar serve --model ./my-model --workers 2 --transport shm   # http://127.0.0.1:8000/v1',
        'seqpar serve --model ./my-model --listen 0.0.0.0:8000 --api-key-file key --max-queue 16',
        'seqpar serve --model /models/llama --coordinator hostA:29501 --token-file token   # on a running cluster',
      ),
    )
    .action(async (options: ServeCommandOptions) => serveCommand(options));
}

async function serveCommand(options: ServeCommandOptions): Promise<void> {
  checkPrefillChunk(options.prefillChunk, '--prefill-chunk'); // before any worker starts
  const apiKey = options.apiKeyFile === undefined ? undefined : await readTokenFile(options.apiKeyFile);
  const cluster = await openCluster(options);
  try {
    const server = await startServer({
      cluster,
      modelDir: options.model,
      host: options.listen.host,
      port: options.listen.port,
      maxQueue: options.maxQueue,
      maxBatch: options.maxBatch,
      prefillChunk: options.prefillChunk,
      shardFrom: options.shardFrom,
      strategy: options.strategy,
      ...(options.modelId ? { modelId: options.modelId } : {}),
      ...(apiKey ? { apiKey } : {}),
      ...(options.kvBudgetMb ? { kvBudgetBytes: options.kvBudgetMb * 2 ** 20 } : {}),
    });
    const where = options.coordinator ? `the cluster at ${options.coordinator}` : `${cluster.workers} ${cluster.transport} worker(s)`;
    log(`seqpar serve: ${options.model} on ${where}, listening on ${server.url}`);
    if (options.json) printJson({ url: server.url, workers: cluster.workers, transport: cluster.transport });
    const [signal] = await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
    log(`seqpar serve: ${String(signal ?? 'signal')}, shutting down`);
    await server.close();
  } finally {
    await cluster.close();
  }
}

async function openCluster(options: ServeCommandOptions): Promise<ClusterClient> {
  if (options.coordinator) return connectCluster({ coordinator: options.coordinator, token: await readTokenFile(options.tokenFile) });
  if (options.tokenFile) throw new UsageError('--token-file goes with --coordinator');
  return createCluster({
    workers: options.workers,
    transport: options.transport,
    threads: options.threads,
    device: options.device,
    maxQueue: options.maxQueue,
    maxBatch: options.maxBatch,
  });
}

function listenAddress(value: string): { host: string; port: number } {
  const match = /^(?:\[?([^\]]*?)\]?:)?(\d+)$/.exec(value);
  const port = Number(match?.[2]);
  if (!match || !(port >= 0 && port < 65536)) throw new InvalidArgumentError('expected HOST:PORT or PORT');
  return { host: match[1] || '127.0.0.1', port };
}
