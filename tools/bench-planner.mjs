// The planner and the simulator against measurement. For each cell (S, workers available N, causal, head
// configuration) every strategy is timed on this host at each degree <= N (inproc workers, one ORT thread each)
// and compared with the planner's pick and predictions, and (N = 2) with @seqpar/sim's projection.
// The grid is measured in parts that each stay under ~10 minutes on 2 cores; every part adds its measurements to
// bench-results/planner-measured.json and rewrites the one combined report from all of them, with the profile the
// first part calibrated (--calibrate: `seqpar plan --calibrate`'s measurement, saved beside the results).
// Options: --seqs 512,...,65536  --workers 1,2,4  --heads 2/2x64,2/1x64  --causal false,true  --runs K  --calibrate
// --fresh  --report (rewrite the report from what is stored, measuring nothing)
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomTensor, seededRandom } from '@seqpar/core';
import { calibrateLocalProfile } from '@seqpar/cli/library';
import { choosePlan, describeSchedule, estimateCost, loadProfile, ulyssesRefusal, workloadOf, writeProfileFile } from '@seqpar/planner';
import { createCluster } from '@seqpar/runtime';
import { simulate } from '@seqpar/sim';
import { writeReport } from './bench-report.mjs';

// Two query heads of 64 (one kv head each, and GQA's two query heads sharing one): a quarter of an 8-head
// request's arithmetic, so that the grid up to 64k tokens fits in parts of minutes on 2 cores (a single-device
// causal 16k request with 8 heads took ~4.4 s; at 64k, 16x that).
const HEAD_CONFIGS = [
  { label: '2/2x64', heads: 2, kvHeads: 2, headDim: 64 },
  { label: '2/1x64', heads: 2, kvHeads: 1, headDim: 64 },
];
const SEQS = [512, 2048, 8192, 16384, 32768, 65536];
// The kernel table is timed at the grid's heads, with keys up to the 32768 a call may hold (planPieces' cap).
const CALIBRATION = { heads: 2, keyRows: [64, 256, 1024, 4096, 16384, 32768] };
const SHARDED = ['ring', 'striped', 'zigzag', 'token-ring', 'ulysses'];
const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench-results');
const STORE = join(resultsDir, 'planner-measured.json');
const PROFILE = join(resultsDir, 'planner-profile.json');

function option(args, name, fallback) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
}

export async function run(args) {
  const seqs = option(args, 'seqs', SEQS.join(',')).split(',').map(Number);
  const causals = option(args, 'causal', 'false,true')
    .split(',')
    .map((c) => c === 'true');
  const workerCounts = option(args, 'workers', '1,2,4').split(',').map(Number);
  const headConfigs = option(args, 'heads', HEAD_CONFIGS.map((h) => h.label).join(','))
    .split(',')
    .map((label) => HEAD_CONFIGS.find((h) => h.label === label));
  const fixedRuns = option(args, 'runs', undefined);
  if (args.includes('--calibrate')) {
    const calibrated = await calibrateLocalProfile({ transport: 'inproc', threads: 1, ...CALIBRATION, log: (line) => process.stderr.write(`calibrate: ${line}\n`) });
    writeProfileFile(PROFILE, calibrated);
  }
  const profile = loadProfile(option(args, 'profile', existsSync(PROFILE) ? PROFILE : 'local'));
  const store = !args.includes('--fresh') && existsSync(STORE) ? JSON.parse(readFileSync(STORE, 'utf8')) : { measured: {}, cells: [] };

  if (args.includes('--report')) return report(store, profile);
  const degrees = [...new Set([1, ...workerCounts])].sort((a, b) => a - b);
  // One cluster per degree, all open at once, so every configuration of a cell is measured in the same rounds.
  const clusters = new Map();
  try {
    for (const degree of degrees) {
      clusters.set(degree, await createCluster({ workers: degree, transport: 'inproc', threads: 1, requestTimeoutMs: 600_000, healthTimeoutMs: 30_000 }));
    }
    for (const heads of headConfigs) {
      for (const seq of seqs) {
        const [q, k, v] = inputs(seq, heads);
        for (const causal of causals) {
          const configs = degrees.flatMap((degree) =>
            degree === 1
              ? [{ strategy: 'single', degree }]
              : SHARDED.filter((s) => s !== 'ulysses' || !ulyssesRefusal(workload(seq, causal, heads, profile), degree)).map((strategy) => ({ strategy, degree })),
          );
          const { best, first } = await timeInterleaved(configs, (c) => clusters.get(c.degree).attention(q, k, v, { causal, strategy: c.strategy }), seq, fixedRuns);
          configs.forEach((c, i) => {
            store.measured[key(seq, causal, heads.label, c.strategy, c.degree)] = best[i];
            process.stderr.write(`${heads.label} S=${seq} causal=${causal} ${c.strategy} x${c.degree}: ${best[i].toFixed(1)} ms (first run ${first[i].toFixed(1)})\n`);
          });
        }
      }
    }
  } finally {
    for (const cluster of clusters.values()) await cluster.close();
  }
  for (const heads of headConfigs) {
    for (const seq of seqs) {
      for (const causal of causals) {
        for (const workers of workerCounts) {
          const cell = { heads: heads.label, seq, causal, workers };
          if (!store.cells.some((c) => key(c.seq, c.causal, c.heads, '', c.workers) === key(seq, causal, heads.label, '', workers))) store.cells.push(cell);
        }
      }
    }
  }
  store.profile = profile.name;
  writeFileSync(STORE, `${JSON.stringify(store, null, 1)}\n`);
  report(store, profile);
}

const key = (seq, causal, headsLabel, strategy, degree) => `${seq}|${causal}|${headsLabel}|${strategy}|${degree}`;

/** The combined report over every measured part. */
function report(store, profile) {
  const cells = [...store.cells].sort((a, b) => a.heads.localeCompare(b.heads) || a.seq - b.seq || Number(a.causal) - Number(b.causal) || a.workers - b.workers);
  const rows = [];
  const predictionErrors = [];
  // The simulator's projection against each strategy measured on 2 workers (issue 8: within 20%).
  const simRows = [];
  for (const { heads: label, seq, causal, workers } of cells) {
    const heads = HEAD_CONFIGS.find((h) => h.label === label);
    const request = { seq, causal, heads: heads.heads, kvHeads: heads.kvHeads, headDim: heads.headDim };
    const w = workloadOf(request, profile);
    const plan = choosePlan(request, profile, { maxWorkers: workers });
    const options = Object.entries(store.measured)
      .map(([k, ms]) => ({ parts: k.split('|'), ms }))
      .filter(({ parts }) => parts[0] === String(seq) && parts[1] === String(causal) && parts[2] === label && Number(parts[4]) <= workers)
      .map(({ parts, ms }) => ({ strategy: parts[3], degree: Number(parts[4]), ms }));
    const best = options.reduce((a, b) => (b.ms < a.ms ? b : a));
    const single = options.find((o) => o.strategy === 'single');
    const pickDegree = plan.strategy === 'single' ? 1 : plan.degree;
    const picked = options.find((o) => o.strategy === plan.strategy && o.degree === pickDegree);
    for (const o of options) {
      const predicted = estimateCost(describeSchedule(o.strategy, w, o.degree), profile).predictedMs;
      if (o.degree === workers || (o.degree === 1 && workers === 1)) predictionErrors.push(Math.abs(predicted - o.ms) / o.ms);
      if (o.degree === 2 && workers === 2) {
        const projected = simulate(o.strategy, w, 2, profile).predictedMs;
        simRows.push({ heads: label, seq, causal, strategy: o.strategy, measuredMs: round(o.ms), simulatedMs: round(projected), error: (projected - o.ms) / o.ms });
      }
    }
    rows.push({
      heads: label,
      seq,
      causal,
      workers,
      measuredBest: `${best.strategy}x${best.degree}`,
      bestMs: round(best.ms),
      pick: `${plan.strategy}x${pickDegree}`,
      pickMeasuredMs: picked ? round(picked.ms) : '',
      pickPredictedMs: round(plan.predictedMs),
      pickOverBest: picked ? round(picked.ms / best.ms, 3) : '',
      shardedWhereSingleFaster: plan.strategy !== 'single' && picked !== undefined && single.ms * 1.1 <= picked.ms,
    });
  }
  const scored = rows.filter((r) => r.pickOverBest !== '');
  const within10 = scored.filter((r) => r.pickOverBest <= 1.1).length;
  const badShards = rows.filter((r) => r.shardedWhereSingleFaster).length;
  const sortedErrors = [...predictionErrors].sort((a, b) => a - b);
  const pct = (x) => `${(100 * x).toFixed(0)}%`;
  const simNotes = SHARDED.map((strategy) => {
    const errors = simRows
      .filter((r) => r.strategy === strategy)
      .map((r) => r.error)
      .sort((a, b) => a - b);
    if (errors.length === 0) return undefined;
    const inside = errors.filter((e) => Math.abs(e) <= 0.2).length;
    return `${strategy} ${inside}/${errors.length} within 20% (signed error min ${pct(errors[0])}, median ${pct(errors[Math.floor(errors.length / 2)])}, max ${pct(errors[errors.length - 1])})`;
  }).filter(Boolean);
  const simInside = simRows.filter((r) => Math.abs(r.error) <= 0.2).length;
  writeReport('planner', {
    title: `Planner picks vs measured best (profile ${profile.name}; inproc workers, 1 ORT thread each)`,
    columns: ['heads', 'seq', 'causal', 'workers', 'measuredBest', 'bestMs', 'pick', 'pickMeasuredMs', 'pickPredictedMs', 'pickOverBest', 'shardedWhereSingleFaster'],
    rows,
    notes: [
      `Pick within 10% of the measured best in ${within10}/${scored.length} cells (target >= 90%); sharded where single was measured >= 10% faster: ${badShards} cells (target 0).`,
      `Planner prediction vs measurement over ${predictionErrors.length} configurations (each strategy at the cell's degree): median |error| ${pct(sortedErrors[Math.floor(sortedErrors.length / 2)])}, 90th percentile ${pct(sortedErrors[Math.floor(0.9 * sortedErrors.length)])}.`,
      `Simulator (@seqpar/sim) projection vs measured on 2 workers with this profile, ${simInside}/${simRows.length} within 20%: ${simNotes.join('; ')}. Per configuration: simulator.* in planner.json.`,
      `Each cell: every configuration (single and each strategy at each degree up to N) run first to warm up, then in interleaved rounds (each configuration once per round, shuffled); its best run counts: ${ROUNDS.map((r) => `${r.warmUps} first run(s) and ${r.rounds} round(s) ${r.upTo === Infinity ? 'beyond' : `up to S = ${r.upTo}`}`).join(', ')} (first runs build graphs; causal graphs settle on their second run). Ulysses only where the degree divides the kv heads.`,
      `Profile ${profile.name}: ${profile.source}. The machine is shared with other jobs: compare within one run.`,
    ],
    extra: { simulator: simRows.map((r) => ({ ...r, error: round(r.error, 3) })) },
  });
}

function workload(seq, causal, heads, profile) {
  return workloadOf({ seq, causal, heads: heads.heads, kvHeads: heads.kvHeads, headDim: heads.headDim }, profile);
}

function inputs(seq, { heads, kvHeads, headDim }) {
  const random = seededRandom(seq + heads * 7 + kvHeads);
  return [randomTensor([seq, heads, headDim], random), randomTensor([seq, kvHeads, headDim], random), randomTensor([seq, kvHeads, headDim], random)];
}

/** Timed rounds and untimed warm-ups by sequence length: ms-level requests are noisy, seconds-long ones are not. */
const ROUNDS = [
  { upTo: 512, rounds: 41, warmUps: 2 },
  { upTo: 2048, rounds: 21, warmUps: 2 },
  { upTo: 8192, rounds: 7, warmUps: 2 },
  { upTo: 16384, rounds: 3, warmUps: 1 },
  // 3 rounds, not 1: a 32k request took 20-40% longer in single runs when the shared host's load came in bursts
  // (the grid's 32k cells then chose between 1.2x-apart times of schedules that ran alike when traced).
  { upTo: 32768, rounds: 3, warmUps: 1 },
  // 2 rounds at 64k, not 1: with one timed run, every configuration's best rested on two runs, and picks within 3% of
  // each other in prediction were judged 10-17% apart.
  { upTo: Infinity, rounds: 2, warmUps: 1 },
];

/**
 * Best wall time of each configuration over every run of it: first runs (warm-ups, which build its graphs and let
 * causal graphs settle) and then interleaved rounds, every configuration once per round in a fresh shuffled order
 * (no configuration always runs right after the same neighbour), so a shift in the shared host's load hits them all
 * alike. A first run only ever pays extra (graph builds), so it counts too: where requests take seconds and run
 * twice, a burst of load on the shared host that spoils one of the two (measured at 32k: 3812 ms against 2308 for
 * the same zigzag request) leaves the other. The first run's time is logged beside the best.
 */
async function timeInterleaved(configs, request, seq, fixedRuns) {
  const policy = ROUNDS.find((r) => seq <= r.upTo);
  const rounds = Number(fixedRuns ?? policy.rounds);
  const first = configs.map(() => NaN);
  const best = configs.map(() => Infinity);
  for (const [i, config] of configs.entries()) {
    for (let w = 0; w < policy.warmUps; w++) {
      const ms = (await request(config)).stats.wallMs;
      if (w === 0) first[i] = ms;
      best[i] = Math.min(best[i], ms);
    }
  }
  const random = seededRandom(seq);
  for (let round = 0; round < rounds; round++) {
    const order = configs.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (const i of order) best[i] = Math.min(best[i], (await request(configs[i])).stats.wallMs);
  }
  return { best, first };
}

const round = (x, digits = 1) => Number(x.toFixed(digits));
