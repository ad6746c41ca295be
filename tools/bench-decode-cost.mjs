// Where a decode token's time and CPU go, on shm worker processes (Linux: reads /proc/<pid>/task/*/stat). Cases:
// one generation on 1 and on 2 ranks (a --length prompt, default 4096; 64 tokens, EOS ignored), and S concurrent
// 2k-token generations on 2 workers (S = 1 and 8, 128 tokens each); each case with one decode step per coordinator
// call and with bursts of steps, back to back. For each: wall ms per token, and CPU ms per
// token by thread group: the coordinator's main thread (this process), each worker's main thread (requests,
// transport, the decode step's host side) and its other threads (the compute thread running ONNX Runtime, and
// V8's). CPU per token x tokens/s = the cores busy: near 2 on this host means CPU-bound; far below it, the token
// waits on wake-ups and exchanges. Then the decode exchange alone: two compute threads of this process exchange a
// one-row partial through the decode lanes of two shm transports, 64 exchanges per chain (a notes line).
// Flags: --length L.
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { RankRecorder, seededRandom } from '@seqpar/core';
import { ComputeThread, GraphBuilder } from '@seqpar/kernels';
import { laneExchanges } from '@seqpar/strategies';
import { createTransport, startRendezvous } from '@seqpar/transport';
import { makeTinyModel } from '@seqpar/model';
import { createCluster } from '@seqpar/runtime';
import { median, option } from './bench-util.mjs';
import { writeReport } from './bench-report.mjs';

const MODEL = { layers: 4, hidden: 256, heads: 8, kvHeads: 2, vocab: 512, seed: 1 };
const TICK_MS = 10;
// Each case runs with one decode step per coordinator call and with bursts (the default), back to back.
const CALLS = [
  { label: '1', options: { maxBurstSteps: 1 } },
  { label: 'up to 16', options: {} },
]; // /proc CPU times are in clock ticks of 10 ms (USER_HZ 100)

const promptOf = (length, seed) => {
  const random = seededRandom(seed);
  return Array.from({ length }, () => Math.floor(random() * 256));
};

/** This process and its children (the workers, once the cluster is up). */
async function familyPids() {
  const pids = [String(process.pid)];
  for (const pid of (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry))) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] === String(process.pid)) pids.push(pid);
  }
  return pids;
}

/** CPU ticks by thread of `pids`: `${pid}/${tid}` -> ticks. */
async function threadTicks(pids) {
  const ticks = new Map();
  for (const pid of pids) {
    for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [])) {
      const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => undefined);
      if (!stat) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks.set(`${pid}/${tid}`, Number(fields[11]) + Number(fields[12])); // utime + stime
    }
  }
  return ticks;
}

/** CPU ms per token by group between two samples (a thread whose tid is its pid is its process's main thread). */
function cpuPerToken(before, after, tokens) {
  const groups = { coordinatorMain: 0, coordinatorOther: 0, workerMain: 0, workerOther: 0 };
  for (const [key, ticks] of after) {
    const [pid, tid] = key.split('/');
    const side = pid === String(process.pid) ? 'coordinator' : 'worker';
    groups[`${side}${pid === tid ? 'Main' : 'Other'}`] += ((ticks - (before.get(key) ?? 0)) * TICK_MS) / tokens;
  }
  return { ...groups, total: Object.values(groups).reduce((a, b) => a + b, 0) };
}

/**
 * Runs `prompts` as generations at once and measures from the moment every one has its first token (their
 * prefills done) to the last token: wall ms per token over all streams, and CPU per token. The window opens
 * synchronously at that moment (tokens that arrive while the CPU times are read count, inside the wall time).
 */
async function measure(cluster, dir, prompts, options) {
  const pids = await familyPids();
  let started = 0;
  let decoded = 0;
  let startedAt;
  let opened;
  const before = new Promise((resolve) => (opened = resolve));
  const runs = prompts.map(async (prompt) => {
    let first = true;
    for await (const _ of cluster.generate(dir, prompt, { ...options, greedy: true, ignoreEos: true })) {
      if (first) {
        first = false;
        if (++started === prompts.length) {
          startedAt = performance.now();
          opened(threadTicks(pids));
        }
      } else if (startedAt !== undefined) decoded++;
    }
  });
  const ticks = await before;
  await Promise.all(runs);
  const wallMs = performance.now() - startedAt;
  const cpu = cpuPerToken(ticks, await threadTicks(pids), decoded);
  return { tokens: decoded, msPerToken: wallMs / decoded, tokensPerSec: (1000 * decoded) / wallMs, ...cpu, coresBusy: (cpu.total * decoded) / wallMs };
}

/** µs per decode-lane exchange of one row x 8 heads x 32 dims between two compute threads: the median of 40 chains of 64. */
async function laneExchangeMicros() {
  const [heads, dim, exchanges] = [8, 32, 64];
  const g = new GraphBuilder('attention-outputs');
  g.op('Identity', [g.input('o', 'float', [1, heads, dim])], {}, { outputName: 'out' });
  g.op('Identity', [g.input('l', 'float', [heads, 1])], {}, { outputName: 'lse' });
  g.output('out', 'float', [1, heads, dim]);
  g.output('lse', 'float', [heads, 1]);
  const model = g.toModelBytes();
  const rendezvous = await startRendezvous({ worldSize: 2, token: 'lanes' });
  const ends = await Promise.all([0, 1].map((rank) => createTransport('shm', { worldSize: 2, token: 'lanes', rendezvous: rendezvous.address, rank })));
  const threads = await Promise.all([0, 1].map(() => ComputeThread.start({ threads: 1 })));
  try {
    await Promise.all(threads.map((thread) => thread.load('attention', () => model.slice())));
    const feeds = {
      o: { type: 'float32', data: new Float32Array(heads * dim).fill(0.5), dims: [1, heads, dim] },
      l: { type: 'float32', data: new Float32Array(heads).fill(1), dims: [heads, 1] },
    };
    const chainOn = async (rank, round) => {
      const ctx = { rank, worldSize: 2, transport: ends[rank], recorder: new RankRecorder(rank), tagPrefix: `b${round}/`, timeoutMs: 10_000 };
      const lanes = laneExchanges(ctx);
      try {
        const steps = [{ run: 'attention', feeds }, ...Array.from({ length: exchanges }, (_, layer) => lanes.step(`${layer}/`, [0]))];
        const started = performance.now();
        await threads[rank].chain(steps);
        return performance.now() - started;
      } finally {
        lanes[Symbol.dispose]();
      }
    };
    const perExchange = [];
    for (let round = 0; round < 45; round++) {
      const times = await Promise.all([0, 1].map((rank) => chainOn(rank, round)));
      if (round >= 5) perExchange.push((1000 * Math.min(...times)) / exchanges); // the first rounds warm the JIT
    }
    return median(perExchange);
  } finally {
    await Promise.all(threads.map((thread) => thread.close()));
    await Promise.all(ends.map((end) => end.close()));
    await rendezvous.close();
  }
}

export async function run(args) {
  const length = Number(option(args, '--length', 4096));
  const dir = await mkdtemp(join(tmpdir(), 'seqpar-bench-decode-cost-'));
  const rows = [];
  const log = (message) => process.stderr.write(`${message}\n`);
  try {
    await makeTinyModel(dir, MODEL);
    for (const [strategy, workers] of [
      ['single', 1],
      ['zigzag', 2],
    ]) {
      for (const { label, options } of CALLS) {
        const cluster = await createCluster({ workers, transport: 'shm', ...options });
        try {
          const result = await measure(cluster, dir, [promptOf(length, 1)], { strategy, maxNewTokens: 64 });
          rows.push({ case: `one ${length}-token generation on ${workers} rank${workers > 1 ? 's' : ''} (${strategy})`, stepsPerCall: label, streams: 1, workers, ...result });
          log(`${rows.at(-1).case}, ${label} steps a call: ${result.msPerToken.toFixed(2)} ms/token, ${result.total.toFixed(2)} CPU ms/token`);
        } finally {
          await cluster.close();
        }
      }
    }
    const clusters = await Promise.all(CALLS.map(({ options }) => createCluster({ workers: 2, transport: 'shm', ...options })));
    try {
      for (const cluster of clusters) await measure(cluster, dir, [promptOf(2048, 0)], { strategy: 'single', maxNewTokens: 4 }); // models loaded, graphs built
      for (const streams of [1, 8, 8]) {
        const prompts = Array.from({ length: streams }, (_, j) => promptOf(2048, 100 + rows.length * 16 + j)); // the same for both
        for (const [i, cluster] of clusters.entries()) {
          const result = await measure(cluster, dir, prompts, { strategy: 'single', maxNewTokens: 128 });
          const label = CALLS[i].label;
          rows.push({
            case: `${streams} concurrent 2k-token generation${streams > 1 ? 's' : ''} on 2 workers (unsharded, batched)`,
            stepsPerCall: label,
            streams,
            workers: 2,
            ...result,
          });
          log(`${rows.at(-1).case}, ${label} steps a call: ${result.tokensPerSec.toFixed(0)} tokens/s, ${result.total.toFixed(2)} CPU ms/token`);
        }
      }
    } finally {
      await Promise.all(clusters.map((cluster) => cluster.close()));
    }
    const laneMicros = await laneExchangeMicros();
    log(`decode lane exchange alone: ${laneMicros.toFixed(1)} µs`);
    const load = loadavg().map((value) => value.toFixed(1));
    writeReport('decode-cost', {
      title: 'seqpar decode: wall time and CPU per token, by thread group (4 layers, hidden 256, 8/2 heads, shm workers)',
      columns: [
        'case',
        'stepsPerCall',
        'streams',
        'workers',
        'tokens',
        'msPerToken',
        'tokensPerSec',
        'coordinatorMain',
        'coordinatorOther',
        'workerMain',
        'workerOther',
        'total',
        'coresBusy',
      ],
      rows,
      notes: [
        'Measured from the moment every stream has its first token to the last token. CPU columns are ms per decoded token (all workers summed), from /proc thread times (10 ms ticks: read them over many tokens). workerOther is the compute thread (ONNX Runtime, intra-op threads 1) plus V8 helper threads.',
        'coresBusy = CPU per token x tokens/s. Where it is well below the cores, the token waits: on thread wake-ups (each hop between a worker main thread and its compute thread, each exchange between ranks, each coordinator call) rather than on compute.',
        'A step is one chain on each rank\'s compute thread; a sharded step (2 ranks) exchanges its partials inside it, once per layer, through decode lanes (docs/ARCHITECTURE.md, "Decode lanes").',
        'stepsPerCall: decode steps one coordinator call (session.step) runs on the workers. 1 (maxBurstSteps: 1): every token is a round trip from this process to each worker, and the next step waits for every reply. "up to 16": a burst (docs/ARCHITECTURE.md, "Bursts"), as many steps as fit in 50 ms, run back to back on the workers, which stream each token here as it is sampled; a sharded row\'s owner broadcasts its token to the other ranks.',
        `The decode exchange alone, through decode lanes between two compute threads of one process (one row x 8 heads x 32 dims, chains of 64 exchanges, the median of 40 chains, each timed by the rank that finished first): ${laneMicros.toFixed(1)} µs per exchange.`,
        `Load average of this shared host at the end of the run: ${load.join(', ')} (1, 5, 15 min) on 2 cores.`,
      ],
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
