// Peak memory per worker process, measured in one run on fresh clusters of shm worker processes:
//   generate:  a 16k-token prompt through the tiny Llama-format model (4 layers, hidden 256, 8/2 heads), 8 greedy
//              tokens, on 1 worker (single) and 2 workers (zigzag)
//   attention: causal S=64k, H=8, D=64 on 1 worker (single) and 4 workers (zigzag)
//   long:      (only with --long) a 128k-token generation on 4 workers (zigzag); prefill takes minutes
//   longest:   (only with --only longest) a 256k-token generation on 4 workers (zigzag); prefill takes most of an hour
// Each configuration gets its own cluster, so a worker's peak RSS belongs to that request alone. Options:
// --only generate,attention,long (the other cases' rows are kept from the last report, so a long run can be done
// on its own); --gen-seq S; --attn-seq S; --long (adds the long case).
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomTensor, seededRandom } from '@seqpar/core';
import { WORKSPACE_BUDGET_BYTES } from '@seqpar/kernels';
import { makeTinyModel } from '@seqpar/model';
import { createCluster } from '@seqpar/runtime';
import { writeReport } from './bench-report.mjs';
import { option } from './bench-util.mjs';

// Room for the longest case's 256k-token prompt and its new tokens.
const MODEL = { layers: 4, hidden: 256, heads: 8, kvHeads: 2, vocab: 512, seed: 1, maxPositionEmbeddings: 262144 + 1024 };
const NEW_TOKENS = 8;
const HEADS = 8;
const DIM = 64;
const REPORT = new URL('../bench-results/memory.json', import.meta.url);

/** A fresh cluster of `workers` shm worker processes, patient with heartbeats: long requests keep the host busy. */
const PATIENCE_MS = 4 * 3_600_000;

async function withCluster(workers, use) {
  const cluster = await createCluster({ workers, transport: 'shm', threads: 1, requestTimeoutMs: PATIENCE_MS, healthTimeoutMs: 120_000 });
  try {
    return await use(cluster);
  } finally {
    await cluster.close();
  }
}

/** Per-worker figures of one request: the largest worker's peak RSS and workspace, every worker's peak. */
function perWorker(ranks) {
  return {
    peakRssMb: Math.max(...ranks.map((rank) => rank.peakRssMb)),
    workspacePeakMb: Math.max(...ranks.map((rank) => rank.workspacePeakMb)),
    peakRssPerRankMb: ranks.map((rank) => rank.peakRssMb.toFixed(0)).join(' / '),
  };
}

async function generation(dir, length, strategy, workers) {
  const random = seededRandom(length);
  const prompt = Array.from({ length }, () => Math.floor(random() * 256));
  const summary = await withCluster(workers, async (cluster) => {
    const run = cluster.generate(dir, prompt, { strategy, maxNewTokens: NEW_TOKENS, greedy: true, ignoreEos: true, timeoutMs: PATIENCE_MS });
    for (;;) {
      const next = await run.next();
      if (next.done) return next.value;
    }
  });
  process.stderr.write(`generate ${length} ${strategy} N=${workers}: TTFT ${summary.ttftMs.toFixed(0)} ms, peak ${perWorker(summary.ranks).peakRssPerRankMb} MB\n`);
  return { case: 'generate', seq: length, strategy, workers, ttftOrWallMs: summary.ttftMs, decodeMsPerToken: summary.decodeMsPerToken, ...perWorker(summary.ranks) };
}

/** Tokens of the request that measures a worker's floor: small enough that its tensors and workspace are noise. */
const FLOOR_SEQ = 1024;

/**
 * One attention request on a fresh cluster, after a tiny one of the same strategy: the tiny request's peak RSS is
 * the worker's floor (node, ONNX Runtime, code, kernel sessions of that strategy), which a peak counts once per
 * worker; shardDataMb is what a rank holds of the request by definition (its q, k, v and out rows, and its lse).
 */
async function attention(length, strategy, workers) {
  const tensors = (seq) => {
    const random = seededRandom(seq);
    return [0, 1, 2].map(() => randomTensor([seq, HEADS, DIM], random));
  };
  const { floor, stats } = await withCluster(workers, async (cluster) => {
    const floor = (await cluster.attention(...tensors(FLOOR_SEQ), { causal: true, strategy })).stats;
    return { floor, stats: (await cluster.attention(...tensors(length), { causal: true, strategy })).stats };
  });
  const floorRssMb = Math.max(...floor.ranks.map((rank) => rank.peakRssMb));
  const shardDataMb = ((4 * length * HEADS * DIM + HEADS * length) * 4) / workers / 1e6;
  process.stderr.write(
    `attention ${length} ${strategy} N=${workers}: ${stats.wallMs.toFixed(0)} ms, peak ${perWorker(stats.ranks).peakRssPerRankMb} MB, floor ${floorRssMb.toFixed(0)} MB\n`,
  );
  return { case: 'attention', seq: length, strategy, workers, ttftOrWallMs: stats.wallMs, floorRssMb, shardDataMb, ...perWorker(stats.ranks) };
}

export async function run(args) {
  const cases = option(args, '--only', args.includes('--long') ? 'generate,attention,long' : 'generate,attention').split(',');
  const genSeq = Number(option(args, '--gen-seq', 16384));
  const attnSeq = Number(option(args, '--attn-seq', 65536));
  const load = loadavg()[0].toFixed(1);
  const dir = await mkdtemp(join(tmpdir(), 'seqpar-bench-memory-'));
  const rows = [];
  try {
    await makeTinyModel(dir, MODEL);
    if (cases.includes('generate')) {
      const one = await generation(dir, genSeq, 'single', 1);
      const two = await generation(dir, genSeq, 'zigzag', 2);
      rows.push(one, { ...two, vsSingle: two.peakRssMb / one.peakRssMb });
    }
    if (cases.includes('attention')) {
      const one = await attention(attnSeq, 'single', 1);
      const four = await attention(attnSeq, 'zigzag', 4);
      rows.push(one, { ...four, vsSingle: four.peakRssMb / one.peakRssMb, aboveFloorVsSingle: (four.peakRssMb - four.floorRssMb) / (one.peakRssMb - one.floorRssMb) });
    }
    if (cases.includes('long')) rows.push({ ...(await generation(dir, 131072, 'zigzag', 4)), case: 'long' });
    if (cases.includes('longest')) rows.push({ ...(await generation(dir, 262144, 'zigzag', 4)), case: 'longest' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  // Read when the run ends, not when it starts: a long case may finish after a shorter run has written its rows.
  const previous = existsSync(REPORT) ? JSON.parse(readFileSync(REPORT, 'utf8')).rows : [];
  const kept = previous.filter((row) => !cases.includes(row.case));
  rows.unshift(...kept);
  writeReport('memory', {
    title: 'Peak memory per worker process (shm workers, 1 ONNX Runtime thread each)',
    columns: [
      'case',
      'seq',
      'strategy',
      'workers',
      'peakRssMb',
      'peakRssPerRankMb',
      'workspacePeakMb',
      'floorRssMb',
      'shardDataMb',
      'vsSingle',
      'aboveFloorVsSingle',
      'ttftOrWallMs',
      'decodeMsPerToken',
    ],
    rows,
    notes: [
      `generate: the tiny model (${MODEL.layers} layers, hidden ${MODEL.hidden}, ${MODEL.heads}/${MODEL.kvHeads} heads), ${NEW_TOKENS} greedy tokens; ttftOrWallMs is TTFT. attention: causal, H=${HEADS}, D=${DIM}, one request; ttftOrWallMs is its wall time.`,
      'peakRssMb: the largest worker process peak RSS (VmHWM); peakRssPerRankMb: every worker. workspacePeakMb: the most the request added to a worker resident set (its peak above the resident set when the request began): kernel workspace plus the request tensors, KV cache and model.',
      `Kernel workspace budget ${WORKSPACE_BUDGET_BYTES / 2 ** 20} MiB (packages/kernels workspace-budget.ts): token-local layer graphs run in row tiles within it without a per-session ORT arena; unmasked attention calls hold at most the keys it allows.`,
      `attention: floorRssMb is the peak RSS of every worker after a ${FLOOR_SEQ}-token request of the same strategy on the same cluster, run first (node, ONNX Runtime, code and kernel sessions); shardDataMb is a rank's share of q, k, v, out and lse; aboveFloorVsSingle compares the peaks less each one's floor. A pass-KV rank also holds the KV blocks it relays round the ring.`,
      'Targets: 16k generation on 2 workers <= 400 MB per worker; 64k attention on 4 workers <= 0.45x single; 128k generation on 4 workers <= 1.2 GiB per worker; 256k generation on 4 workers <= 1.5 GiB per worker.',
      `Load average (1 min) when the run started: ${load} (a shared host: times are indicative, memory is not affected by load).${kept.length ? ` Cases run this time: ${cases.join(', ')}; other rows are from the previous report.` : ''}`,
    ],
  });
}
