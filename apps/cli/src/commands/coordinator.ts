import { once } from 'node:events';
import { Command, Option } from 'commander';
import { runCoordinator } from '@seqpar/runtime';
import { log, printJson } from '../output.js';
import { positiveInt } from '../options.js';
import { readTokenFile } from '../token-file.js';
import { examples } from '../help-examples.js';

interface CoordinatorOptions {
  listen: string;
  clientListen?: string;
  worldSize: number;
  tokenFile: string;
  transport: 'ws' | 'shm';
  healthTimeout: number;
  json: boolean;
}

export function register(program: Command): void {
  program
    .command('coordinator')
    .summary('serve a cluster of externally launched workers (torchrun, SLURM, Kubernetes) and its clients')
    .description(
      'Listens for `seqpar worker` processes and, once all --world-size have joined, runs the requests that\n' +
        '`seqpar attention --coordinator` clients send (they queue until then). Runs until SIGINT or SIGTERM,\n' +
        'then shuts the workers down and exits 0.',
    )
    .requiredOption('--listen <host:port>', 'where workers connect (their MASTER_ADDR:MASTER_PORT); a bare port means 127.0.0.1', hostPort)
    .option('--client-listen <host:port>', 'where clients connect (default: the same host, the next port)', hostPort)
    .requiredOption('--world-size <n>', 'number of workers that will join', positiveInt)
    .requiredOption('--token-file <file>', 'shared secret of the cluster (workers and clients use the same file)')
    .addOption(new Option('--transport <kind>', 'how workers exchange blocks (shm only on one host)').choices(['ws', 'shm']).default('ws'))
    .option('--health-timeout <ms>', 'a dead or silent worker fails the request within about this long', positiveInt, 2000)
    .option('--json', 'print one JSON line with the addresses on stdout once every worker joined', false)
    .addHelpText(
      'after',
      examples(
        'seqpar coordinator --listen 0.0.0.0:29500 --world-size 2 --token-file token   # workers dial 29500, clients 29501',
        'seqpar coordinator --listen 127.0.0.1:29500 --world-size 4 --token-file token --transport shm --json   # one host',
        'seqpar worker --coordinator hostA:29500 --rank 0 --world-size 2 --token-file token   # then each worker',
      ),
    )
    .action(async (options: CoordinatorOptions) => coordinatorCommand(options));
}

async function coordinatorCommand(options: CoordinatorOptions): Promise<void> {
  const token = await readTokenFile(options.tokenFile);
  const coordinator = await runCoordinator({
    listen: options.listen,
    worldSize: options.worldSize,
    token,
    transport: options.transport,
    healthTimeoutMs: options.healthTimeout,
    ...(options.clientListen ? { clientListen: options.clientListen } : {}),
  });
  const { address, clientAddress } = coordinator;
  log(`seqpar coordinator: workers connect to ${address}, clients to ${clientAddress}; waiting for ${options.worldSize} worker(s)`);
  const signalled = Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]).then(([signal]) => String(signal ?? 'signal'));
  try {
    const first = await Promise.race([coordinator.ready.then(() => undefined), signalled]);
    if (first === undefined) {
      if (options.json) printJson({ address, clientAddress, worldSize: options.worldSize, transport: options.transport });
      else log(`seqpar coordinator: all ${options.worldSize} worker(s) joined`);
      log(`seqpar coordinator: ${await signalled}, shutting the workers down`);
    }
  } finally {
    await coordinator.stop();
  }
}

function hostPort(value: string): string {
  return /^\d+$/.test(value) ? `127.0.0.1:${value}` : value;
}
