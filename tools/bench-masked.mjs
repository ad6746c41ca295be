// What masked blocks cost, measured in one run:
//  kernel:  blocks cut as a rank cuts them (planPieces: kernel calls, each merged into the rank's accumulator) on one
//           kernel of one ORT thread in this process: the 8k causal diagonal block against the unmasked 8k x 8k block,
//           and a sliding window of 1024 at 16k against full causal at 16k.
//  ranks:   causal 16k at N = 2, the busiest rank's blocks (every source's, as visibleBlocks gives them) for ring,
//           striped and zigzag on that one kernel: what a rank computes, without the other rank on the cores.
//  cluster: causal 16k on 2 worker processes (shm): striped and zigzag against ring, requests interleaved.
// Options: --rounds R (interleaved rounds after a warm-up, default 3), --transport shm|ws.
import { execSync } from 'node:child_process';
import { createPartial, mergeInto, randomTensor, seededRandom } from '@seqpar/core';
import { AttentionKernel, ComputeThread } from '@seqpar/kernels';
import { createCluster } from '@seqpar/runtime';
import { planPieces, visibleBlocks } from '@seqpar/strategies';
import { writeReport } from './bench-report.mjs';
import { attentionWithCpu, median, option } from './bench-util.mjs';

const HEADS = 8;
const DIM = 64;

const rows = (t, start, end) => ({ data: t.data.subarray(start * HEADS * DIM, end * HEADS * DIM), shape: [end - start, HEADS, DIM] });

/**
 * Blocks as a rank runs them: each block's planPieces calls in order, each merged into the rank's accumulator
 * before the next. A block is its query rows of `q` against its key rows of `k`, `v`.
 */
async function attendBlocks(kernel, [q, k, v], blocks) {
  const acc = createPartial(q.shape[0], HEADS, DIM);
  for (const block of blocks) {
    const [sq, sk] = [block.query.end - block.query.start, block.key.end - block.key.start];
    for (const { query, key, mask } of planPieces(sq, sk, block.mask)) {
      const [q0, k0] = [block.query.start + query.start, block.key.start + key.start];
      const partial = await kernel.attend(rows(q, q0, q0 + query.end - query.start), rows(k, k0, k0 + key.end - key.start), rows(v, k0, k0 + key.end - key.start), mask);
      mergeInto(acc, partial, { start: q0, end: q0 + query.end - query.start });
    }
  }
  return acc;
}

const tensors = (seq) => {
  const random = seededRandom(seq);
  return [0, 1, 2].map(() => randomTensor([seq, HEADS, DIM], random));
};

/**
 * Wall and CPU time of each contender over `rounds` interleaved rounds after a warm-up. CPU time is this process's
 * (the kernel's thread does the work, one ORT thread): another process's load on the shared cores delays a call but
 * does not add to it.
 */
async function interleavedBlocks(contenders, rounds) {
  for (const c of contenders) await c.run();
  const times = contenders.map(() => ({ wall: [], cpu: [] }));
  for (let round = 0; round < rounds; round++) {
    for (const [i, c] of contenders.entries()) {
      const [wall0, cpu0] = [performance.now(), process.cpuUsage()];
      await c.run();
      const cpu = process.cpuUsage(cpu0);
      times[i].wall.push(performance.now() - wall0);
      times[i].cpu.push((cpu.user + cpu.system) / 1000);
    }
  }
  return contenders.map((c, i) => ({
    case: c.name,
    strategy: c.strategy ?? '',
    calls: c.calls,
    wallMs: Math.min(...times[i].wall),
    wallMedianMs: median(times[i].wall),
    cpuMs: Math.min(...times[i].cpu),
    cpuMedianMs: median(times[i].cpu),
  }));
}

async function kernelRows(rounds) {
  // A session cache that holds every contender's shapes, so each block is timed warm rather than rebuilding
  // sessions evicted by the block before it.
  const kernel = new AttentionKernel(await ComputeThread.start({ threads: 1 }), true, 4 * 2 ** 30);
  try {
    const block = (seq, name, mask) => {
      const inputs = tensors(seq);
      const whole = { query: { start: 0, end: seq }, key: { start: 0, end: seq }, mask };
      return { name, calls: planPieces(seq, seq, mask).length, run: () => attendBlocks(kernel, inputs, [whole]) };
    };
    const [full8k, causal8k] = await interleavedBlocks([block(8192, '8k unmasked', { kind: 'none' }), block(8192, '8k causal diagonal', { kind: 'causal-inclusive' })], rounds);
    causal8k.vsBaseline = causal8k.cpuMs / full8k.cpuMs;
    causal8k.wallVsBaseline = causal8k.wallMs / full8k.wallMs;
    const window = { kind: 'band', min: 1 - 1024, max: 0 };
    const [causal16k, window16k] = await interleavedBlocks([block(16384, '16k full causal', { kind: 'causal-inclusive' }), block(16384, '16k window 1024', window)], rounds);
    window16k.vsBaseline = window16k.cpuMs / causal16k.cpuMs;
    window16k.wallVsBaseline = window16k.wallMs / causal16k.wallMs;
    // A rank's share is 8k rows; every source's KV is random data of the same size (only its shape matters here).
    const world = { seq: 16384, n: 2, causal: true };
    const share = tensors(8192);
    const rank = (strategy, layout, r) => {
      const blocks = [0, 1].flatMap((source) => visibleBlocks(layout, world, r, source));
      const calls = blocks.reduce((sum, b) => sum + planPieces(b.query.end - b.query.start, b.key.end - b.key.start, b.mask).length, 0);
      return { name: `causal 16k N=2, rank ${r}'s blocks`, strategy, calls, run: () => attendBlocks(kernel, share, blocks) };
    };
    const ranks = await interleavedBlocks([rank('ring', 'contiguous', 1), rank('striped', 'striped', 0), rank('zigzag', 'zigzag', 0)], rounds);
    for (const row of ranks) {
      row.vsBaseline = row.cpuMs / ranks[0].cpuMs;
      row.wallVsBaseline = row.wallMs / ranks[0].wallMs;
    }
    return [full8k, causal8k, causal16k, window16k, ...ranks];
  } finally {
    await kernel.close();
  }
}

async function clusterRows(rounds, transport) {
  const seq = 16384;
  const random = seededRandom(seq);
  const [q, k, v] = [0, 1, 2].map(() => randomTensor([seq, HEADS, DIM], random));
  const cluster = await createCluster({ workers: 2, transport, threads: 1, requestTimeoutMs: 900_000, healthTimeoutMs: 30_000 });
  try {
    const strategies = ['ring', 'striped', 'zigzag'];
    for (const strategy of strategies) await cluster.attention(q, k, v, { causal: true, strategy });
    const runs = strategies.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (const [i, strategy] of strategies.entries()) runs[i].push(await attentionWithCpu(cluster, [q, k, v], { causal: true, strategy }));
    }
    const result = strategies.map((strategy, i) => {
      const best = runs[i].reduce((a, b) => (b.wallMs < a.wallMs ? b : a));
      return {
        case: `causal 16k, 2 ${transport} workers`,
        strategy,
        wallMs: best.wallMs,
        wallMedianMs: median(runs[i].map((s) => s.wallMs)),
        computeMs: best.ranks.map((rank) => rank.computeMs.toFixed(0)).join(' / '),
        workerCpuMs: best.workerCpuMs.join(' / '),
        busiestCpuMs: Math.max(...best.workerCpuMs),
      };
    });
    for (const row of result) {
      row.wallVsRing = row.wallMs / result[0].wallMs;
      row.medianVsRing = row.wallMedianMs / result[0].wallMedianMs;
      row.cpuVsRing = row.busiestCpuMs / result[0].busiestCpuMs;
    }
    return result;
  } finally {
    await cluster.close();
  }
}

export async function run(args = []) {
  const rounds = Number(option(args, '--rounds', 3));
  const transport = option(args, '--transport', 'shm');
  const loadBefore = execSync('uptime').toString().trim();
  const kernel = await kernelRows(rounds);
  for (const row of kernel) process.stderr.write(`${row.case}: ${row.wallMs.toFixed(0)} ms wall, ${row.cpuMs.toFixed(0)} ms CPU\n`);
  const cluster = await clusterRows(rounds, transport);
  const loadAfter = execSync('uptime').toString().trim();
  writeReport('masked', {
    title: `What masked blocks cost (H=${HEADS}, D=${DIM}, 1 ORT thread per kernel, interleaved over ${rounds} rounds)`,
    columns: [
      'case',
      'strategy',
      'calls',
      'wallMs',
      'wallMedianMs',
      'cpuMs',
      'cpuMedianMs',
      'vsBaseline',
      'wallVsBaseline',
      'computeMs',
      'workerCpuMs',
      'wallVsRing',
      'medianVsRing',
      'cpuVsRing',
    ],
    rows: [...kernel, ...cluster],
    notes: [
      'Kernel rows: a block cut as a rank cuts it (planPieces), every call merged into an accumulator, on one kernel in the bench process; wallMs/cpuMs best of the rounds, cpuMs the process CPU time (other processes on the shared cores delay it but do not add to it).',
      "vsBaseline (CPU) and wallVsBaseline: the 8k causal diagonal against the 8k unmasked block (target <= 0.55, ideal 0.5); the 16k window of 1024 against 16k full causal (ideal 1/8); a rank's blocks against ring's busiest rank (rank 1: the full block and the causal diagonal; ideal 0.667).",
      `Cluster rows: ${transport} workers, each strategy warmed up, then one request of each per round; wallVsRing compares best requests, medianVsRing medians (target: striped and zigzag <= 0.72, ideal 0.667).`,
      "workerCpuMs: each worker process's CPU time over the best request; cpuVsRing: the busiest worker's CPU time against ring's busiest, the work ratio without the time a rank waited for a core (two balanced ranks both want a core for the whole request; ring's rank 0 gives its core up early).",
      `Load: before \`${loadBefore}\`; after \`${loadAfter}\`.`,
    ],
  });
}
