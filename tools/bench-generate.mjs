// Long-context generation with a tiny Llama-format model: N=1 against N=2 at 16k and 32k-token prompts, measured
// in one run, with the ranks as worker processes (cluster.generate: one process per rank, joined by shm or ws) and
// as in-process ranks (generateTokens). TTFT = prefill of the whole prompt and the first sampled token; decode =
// ms per new token, and the workers' CPU ms per new token. Flags: --quick (2k and 8k), --lengths 16384,32768
// (prompt lengths), --transport ws|shm (default shm), --no-inproc, --rounds R (N=1 and N=2 alternate R times per
// length and kind of ranks, each a row: on a shared host, compare the ratios of one round).
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandom } from '@seqpar/core';
import { generate, loadModel, makeTinyModel } from '@seqpar/model';
import { createCluster } from '@seqpar/runtime';
import { option, processCpuMs } from './bench-util.mjs';
import { writeReport } from './bench-report.mjs';

const MODEL = { layers: 4, hidden: 256, heads: 8, kvHeads: 2, vocab: 512, seed: 1 };
// Decode ms/token averages the 31 steps after the first token; ignoreEos keeps all of them (the tiny random model's
// greedy stream at 32k hits EOS after 7 tokens, and 6 steps averaged mostly the first step's one-off cost).
const NEW_TOKENS = 32;
const RUNS = [
  ['single', 1],
  ['zigzag', 2],
];

/**
 * One generation on a fresh cluster of `workers` worker processes; returns its summary, with the CPU ms the
 * workers spent per decoded token (all threads, from the first token's arrival to the last's).
 */
async function onProcesses(dir, prompt, strategy, workers, transport) {
  const cluster = await createCluster({ workers, transport });
  try {
    const run = cluster.generate(dir, prompt, { strategy, maxNewTokens: NEW_TOKENS, greedy: true, ignoreEos: true });
    const cpuMs = () => cluster.pids().reduce((sum, pid) => sum + processCpuMs(pid), 0);
    let first;
    for (let decoded = -1; ; decoded++) {
      const next = await run.next();
      if (next.done) return { ...next.value, decodeCpuMsPerToken: (cpuMs() - first) / decoded };
      first ??= cpuMs();
    }
  } finally {
    await cluster.close();
  }
}

export async function run(args) {
  const lengths = args.includes('--lengths') ? args[args.indexOf('--lengths') + 1].split(',').map(Number) : args.includes('--quick') ? [2048, 8192] : [16384, 32768];
  const rounds = Number(option(args, '--rounds', 1));
  const loadAtStart = loadavg();
  const transport = args.includes('--transport') ? args[args.indexOf('--transport') + 1] : 'shm';
  const modes = args.includes('--no-inproc') ? [transport] : [transport, 'inproc'];
  const dir = await mkdtemp(join(tmpdir(), 'seqpar-bench-model-'));
  try {
    await makeTinyModel(dir, MODEL);
    const model = await loadModel(dir);
    const rows = [];
    for (const length of lengths) {
      const random = seededRandom(length);
      const prompt = Array.from({ length }, () => Math.floor(random() * 256));
      for (const mode of modes) {
        for (let round = 0; round < rounds; round++) {
          const results = {};
          for (const [strategy, workers] of RUNS) {
            const summary =
              mode === 'inproc'
                ? await generate(model, prompt, { strategy, workers, maxNewTokens: NEW_TOKENS, greedy: true, ignoreEos: true })
                : await onProcesses(dir, prompt, strategy, workers, mode);
            results[workers] = summary;
            process.stderr.write(`${length} tokens, ${mode}, N=${workers}: TTFT ${summary.ttftMs.toFixed(0)} ms, decode ${summary.decodeMsPerToken.toFixed(1)} ms/token\n`);
            rows.push({
              prompt: length,
              round,
              ranks: mode === 'inproc' ? 'in-process' : `${mode} processes`,
              strategy,
              workers,
              ttftMs: summary.ttftMs,
              prefillTokensPerSec: summary.prefillTokensPerSec,
              decodeMsPerToken: summary.decodeMsPerToken,
              decodeCpuMsPerToken: summary.decodeCpuMsPerToken ?? '',
              kvCacheMbPerRank: Math.max(...summary.kvCacheMb),
              peakRssMb: Math.max(...summary.ranks.map((rank) => rank.peakRssMb)),
              ttftVsN1: workers === 1 ? '' : summary.ttftMs / results[1].ttftMs,
              decodeVsN1: workers === 1 ? '' : summary.decodeMsPerToken / results[1].decodeMsPerToken,
              sameTokens: workers === 1 ? '' : String(summary.tokens.join() === results[1].tokens.join()),
            });
          }
        }
      }
    }
    writeReport('generate', {
      title: `seqpar generate: ${MODEL.layers} layers, hidden ${MODEL.hidden}, ${MODEL.heads} heads / ${MODEL.kvHeads} KV heads, ${NEW_TOKENS} greedy tokens`,
      columns: [
        'prompt',
        'round',
        'ranks',
        'strategy',
        'workers',
        'ttftMs',
        'prefillTokensPerSec',
        'decodeMsPerToken',
        'decodeCpuMsPerToken',
        'kvCacheMbPerRank',
        'peakRssMb',
        'ttftVsN1',
        'decodeVsN1',
        'sameTokens',
      ],
      rows,
      notes: [
        `"${transport} processes": cluster.generate on a fresh createCluster({ workers: N, transport: '${transport}' }), one worker process per rank (1 ONNX Runtime intra-op thread each, on the 2 cores); each worker loads the model directory itself and keeps its KV cache share; tokens stream back to this process as partial replies. TTFT counts from the request to the first token's arrival, the workers' model load and graph build included.`,
        '"in-process": generateTokens, ranks as tasks of this process with one compute thread each, joined by the inproc transport; the ranks share one main thread, which copies every kernel feed into the compute threads, except the KV cache: each rank\'s share stays resident on its compute thread (decode sends only the new rows).',
        "In-process ranks run one rank loop (packages/model rank-generation.ts): the rank holding a step's logits samples and broadcasts the token over the data plane. Worker processes run the coordinator's generation batch (docs/ARCHITECTURE.md section 7): a session.prefill call, then session.step calls, each a burst of decode steps the workers run back to back (as many as fit in 50 ms, up to 16), streaming every token to this process as it is sampled; the rank that samples a step's token broadcasts it to the other rank over the data plane.",
        "ttftVsN1 and decodeVsN1 compare with N=1 of the same kind of ranks, in this run. peakRssMb is the largest rank process's peak (in-process: the one process); kvCacheMbPerRank is the largest rank's KV cache (4 layers, reserved decode rows included).",
        "N=2 prefill shards the prompt in zigzag order; decode keeps the KV cache sharded (new tokens round-robin): every rank runs the new token's token-local layers itself, attends over its own share, and the ranks exchange (out, lse) once per layer. On shm a decode step is ONE compute-thread chain per rank, its exchanges chain steps through decode lanes (files in /dev/shm the compute threads pwrite and pread); on ws each layer is a chain followed by an exchange on the worker's main thread. N=1 runs a whole step as one chain. The first token waits until every rank has finished prefill.",
        'decodeCpuMsPerToken: CPU ms of all worker processes (every thread) per decoded token, from the first token to the last: what a token costs the host whatever its load.',
        'Targets: decode ms/token N=2 <= 0.85x N=1 at 16k and 32k, greedy tokens the same; TTFT N=2 <= 0.6x N=1 at 32k.',
        `Load average of this shared host (1, 5, 15 min, 2 cores) at the start of the run: ${loadText(loadAtStart)}; at its end: ${loadText(loadavg())}. Where it is above 2, N=2 does not get its two cores.`,
      ],
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const loadText = (load) => load.map((value) => value.toFixed(1)).join(', ');
