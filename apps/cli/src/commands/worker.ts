import { once } from 'node:events';
import { Command, Option } from 'commander';
import type { Device } from '@seqpar/kernels';
import { runWorker } from '@seqpar/runtime';
import { log } from '../output.js';
import { nonNegativeInt, oneOf, positiveInt } from '../options.js';
import { readTokenFile } from '../token-file.js';
import { examples } from '../help-examples.js';

interface WorkerOptions {
  coordinator?: string;
  rank?: number;
  worldSize?: number;
  tokenFile: string;
  threads: number;
  device: Device;
  transport: 'ws' | 'shm';
  listenHost: string;
  healthTimeout: number;
}

export function register(program: Command): void {
  program
    .command('worker')
    .summary('one worker process of a cluster served by `seqpar coordinator`')
    .description(
      'Drives one device for the coordinator until it shuts the cluster down (or SIGINT/SIGTERM). Rank, world\n' +
        'size and coordinator come from the flags or from the launcher: torchrun (RANK, WORLD_SIZE, LOCAL_RANK,\n' +
        'MASTER_ADDR, MASTER_PORT), SLURM (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID) or a Kubernetes indexed Job\n' +
        '(JOB_COMPLETION_INDEX).',
    )
    .option('--coordinator <host:port>', "the coordinator's worker address (default MASTER_ADDR:MASTER_PORT)")
    .option('--rank <r>', 'this worker (default RANK, SLURM_PROCID or JOB_COMPLETION_INDEX)', nonNegativeInt)
    .option('--world-size <n>', 'number of workers (default WORLD_SIZE or SLURM_NTASKS)', positiveInt)
    .requiredOption('--token-file <file>', "the cluster's shared secret (the coordinator's file)")
    .option('--threads <n>', 'ONNX Runtime intra-op threads', positiveInt, 1)
    .addOption(new Option('--device <device>', 'execution provider').argParser(oneOf(['cpu', 'cuda'] as const)).default('cpu'))
    .addOption(new Option('--transport <kind>', "the coordinator's --transport").choices(['ws', 'shm']).default('ws'))
    .option('--listen-host <host>', 'address peers reach this worker at', '127.0.0.1')
    .option('--health-timeout <ms>', "the coordinator's --health-timeout", positiveInt, 2000)
    .addHelpText(
      'after',
      examples(
        'seqpar worker --coordinator hostA:29500 --rank 0 --world-size 2 --token-file token --listen-host 10.0.0.5',
        'RANK=1 WORLD_SIZE=2 MASTER_ADDR=hostA MASTER_PORT=29500 seqpar worker --token-file token   # torchrun-style variables',
        'srun -n 4 seqpar worker --coordinator hostA:29500 --token-file token   # SLURM gives rank and world size',
      ),
    )
    .action(async (options: WorkerOptions) => workerCommand(options));
}

async function workerCommand(options: WorkerOptions): Promise<void> {
  const token = await readTokenFile(options.tokenFile);
  const worker = await runWorker({
    token,
    device: options.device,
    threads: options.threads,
    transport: options.transport,
    listenHost: options.listenHost,
    healthTimeoutMs: options.healthTimeout,
    ...(options.coordinator !== undefined ? { coordinator: options.coordinator } : {}),
    ...(options.rank !== undefined ? { rank: options.rank } : {}),
    ...(options.worldSize !== undefined ? { worldSize: options.worldSize } : {}),
  });
  // "serving" only once the coordinator took this worker in; until then runWorker says why it is still trying.
  let joined = false;
  void worker.joined.then(() => {
    joined = true;
    log(`seqpar worker: rank ${worker.rank} of ${worker.worldSize} joined the coordinator, serving`);
  });
  // A signal while still trying to join ends the command at once: there is nothing to leave cleanly yet.
  const signalled = Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  const stopOnSignal = signalled.then(() => (joined ? worker.stop() : undefined));
  await Promise.race([worker.done, stopOnSignal]);
}
