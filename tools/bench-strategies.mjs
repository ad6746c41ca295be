// Distributed attention strategies with real worker processes (process executor), measured in one run:
//  causal:     S=16k, H=8, D=64, N=2: wall time of ring, striped, zigzag, token-ring and single; per-rank compute
//  noncausal:  S=16k: N=2 (ring) against N=1 (single)
//  memory:     peak RSS per worker at S=64k: N=4 (zigzag) against one worker holding the whole sequence
// Options: --only causal,noncausal,memory (the other cases' rows are kept from the last report, so a run that would
// take too long can be split), --transport shm|ws, --seq S, --long-seq S, --runs R.
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { randomTensor, seededRandom, toChromeTrace } from '@seqpar/core';
import { createCluster } from '@seqpar/runtime';
import { writeReport } from './bench-report.mjs';
import { option } from './bench-util.mjs';

const HEADS = 8;
const DIM = 64;
const CASES = ['causal', 'noncausal', 'memory'];
const TRACE = 'docs/trace-zigzag-causal-16k-n2.json';

function inputs(seq) {
  const random = seededRandom(seq);
  return [0, 1, 2].map(() => randomTensor([seq, HEADS, DIM], random));
}

/**
 * A fresh cluster of real worker processes per configuration (so peak RSS belongs to it alone); a warm-up request
 * builds the sessions, then the best of `runs` requests is kept.
 */
async function measure({ strategy, workers, transport, seq, causal, runs, warmup = true, trace }) {
  // Shipping 64k-token shards keeps the coordinator busy for a while: allow for it in heartbeats.
  const cluster = await createCluster({ workers, transport, threads: 1, requestTimeoutMs: 900_000, healthTimeoutMs: 30_000 });
  try {
    const [q, k, v] = inputs(seq);
    if (warmup) await cluster.attention(q, k, v, { causal, strategy });
    let best;
    for (let i = 0; i < runs; i++) {
      const { stats } = await cluster.attention(q, k, v, { causal, strategy, trace: trace !== undefined });
      if (!best || stats.wallMs < best.wallMs) best = stats;
    }
    if (trace) await writeFile(trace, `${JSON.stringify(toChromeTrace(best.spans ?? []))}\n`);
    const computeMs = best.ranks.map((rank) => rank.computeMs);
    const mean = computeMs.reduce((a, b) => a + b, 0) / computeMs.length;
    process.stderr.write(`${strategy} N=${workers} S=${seq} causal=${causal}: ${best.wallMs.toFixed(0)} ms, compute ${computeMs.map((ms) => ms.toFixed(0)).join('/')}\n`);
    return {
      wallMs: best.wallMs,
      computeMs,
      computeMaxOverMean: Math.max(...computeMs) / mean,
      commMs: Math.max(...best.ranks.map((rank) => rank.commMs)),
      peakRssMb: Math.max(...best.ranks.map((rank) => rank.peakRssMb)),
    };
  } finally {
    await cluster.close();
  }
}

function row(name, strategy, workers, seq, result, extra = {}) {
  return {
    case: name,
    strategy,
    workers,
    seq,
    wallMs: result.wallMs,
    computeMs: result.computeMs.map((ms) => ms.toFixed(0)).join(' / '),
    computeMaxOverMean: result.computeMaxOverMean,
    commMs: result.commMs,
    peakRssMb: result.peakRssMb,
    ...extra,
  };
}

async function causalCase({ transport, seq, runs }) {
  const common = { transport, seq, causal: true, runs };
  const single = await measure({ strategy: 'single', workers: 1, ...common });
  const results = {};
  for (const strategy of ['ring', 'striped', 'zigzag', 'token-ring']) {
    results[strategy] = await measure({ strategy, workers: 2, ...common, ...(strategy === 'zigzag' ? { trace: TRACE } : {}) });
  }
  return [
    row('causal', 'single', 1, seq, single),
    ...Object.entries(results).map(([strategy, result]) =>
      row('causal', strategy, 2, seq, result, { vsRing: result.wallMs / results.ring.wallMs, speedupVsN1: single.wallMs / result.wallMs }),
    ),
  ];
}

async function nonCausalCase({ transport, seq, runs }) {
  const common = { transport, seq, causal: false, runs };
  const one = await measure({ strategy: 'single', workers: 1, ...common });
  const two = await measure({ strategy: 'ring', workers: 2, ...common });
  return [row('noncausal', 'single', 1, seq, one), row('noncausal', 'ring', 2, seq, two, { speedupVsN1: one.wallMs / two.wallMs })];
}

async function memoryCase({ transport, longSeq }) {
  // One cold request each: peak RSS of a process is a high-water mark, and a warm-up would only repeat it.
  const common = { transport, seq: longSeq, causal: true, runs: 1, warmup: false };
  const whole = await measure({ strategy: 'single', workers: 1, ...common });
  const sharded = await measure({ strategy: 'zigzag', workers: 4, ...common });
  return [row('memory', 'single', 1, longSeq, whole), row('memory', 'zigzag', 4, longSeq, sharded, { rssVsSingle: sharded.peakRssMb / whole.peakRssMb })];
}

/** Rows of the cases not run this time, from the last report (each case's ratios come from one run). */
function keptRows(only) {
  try {
    const last = JSON.parse(readFileSync('bench-results/strategies.json', 'utf8'));
    return last.rows.filter((r) => !only.includes(r.case));
  } catch {
    return [];
  }
}

export async function run(args = []) {
  const only = option(args, '--only', CASES.join(',')).split(',');
  const unknown = only.filter((name) => !CASES.includes(name));
  if (unknown.length) throw new Error(`unknown case(s) ${unknown.join(', ')}; cases: ${CASES.join(', ')}`);
  const settings = {
    transport: option(args, '--transport', 'shm'),
    seq: Number(option(args, '--seq', 16384)),
    longSeq: Number(option(args, '--long-seq', 65536)),
    runs: Number(option(args, '--runs', 3)),
  };
  await mkdir('docs', { recursive: true });
  const measured = {
    causal: only.includes('causal') ? await causalCase(settings) : [],
    noncausal: only.includes('noncausal') ? await nonCausalCase(settings) : [],
    memory: only.includes('memory') ? await memoryCase(settings) : [],
  };
  const kept = keptRows(only);
  const rows = CASES.flatMap((name) => (only.includes(name) ? measured[name] : kept.filter((r) => r.case === name)));
  writeReport('strategies', {
    title: `Strategies across worker processes (${settings.transport}, H=${HEADS}, D=${DIM}, 1 ORT thread per worker, 2 cores)`,
    columns: ['case', 'strategy', 'workers', 'seq', 'wallMs', 'computeMs', 'computeMaxOverMean', 'commMs', 'peakRssMb', 'vsRing', 'speedupVsN1', 'rssVsSingle'],
    rows,
    notes: [
      'Every configuration runs on a fresh cluster of worker processes (process executor, shm transport unless noted).',
      'wallMs: best of 3 requests after a warm-up request (memory case: one cold request), from submission to gathered result.',
      'computeMs: per-rank kernel + merge time; computeMaxOverMean: their balance; commMs: the most any rank waited on transfers compute did not hide.',
      'peakRssMb: the largest worker process peak RSS (memory case: one worker holding everything against each of 4 workers).',
      'Targets: striped and zigzag vsRing <= 0.75 (causal); their computeMaxOverMean <= 1.10; non-causal N=2 speedupVsN1 >= 1.8; rssVsSingle <= 0.35.',
      `Cases run this time: ${only.join(', ')}; other rows are from the previous report (ratios are only ever taken within one case).`,
    ],
  });
}
