// The library's request path against the bare kernel call it wraps, warm, in one run: a one-worker cluster's
// attention request (single strategy, non-causal) and AttentionKernel.attend on the same q, k, v, interleaved
// request by request. What the request adds is the path: the call to the coordinator, q, k, v crossing to the
// worker, the strategy's kernel calls and merges, and out and lse coming back into the caller's arrays.
// Options: --seqs 2048,8192, --rounds R (requests per contender, after a warm-up), --transports inproc,shm.
import { loadavg } from 'node:os';
import { randomTensor, seededRandom } from '@seqpar/core';
import { createAttentionKernel } from '@seqpar/kernels';
import { createCluster } from '@seqpar/runtime';
import { writeReport } from './bench-report.mjs';
import { median, option } from './bench-util.mjs';

const HEADS = 8;
const DIM = 64;

/**
 * Each contender once to warm up, then `rounds` rounds of one call each, interleaved, after a short pause. Per
 * contender: the call times, and what each call returned.
 */
async function interleaved(contenders, rounds) {
  for (const run of Object.values(contenders)) await run();
  const times = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]));
  const results = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(contenders)) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const started = performance.now();
      const result = await run();
      times[name].push(performance.now() - started);
      results[name].push(result);
    }
  }
  return { times, results };
}

export async function run(args = []) {
  const seqs = option(args, '--seqs', '2048,8192').split(',').map(Number);
  const rounds = Number(option(args, '--rounds', 7));
  const transports = option(args, '--transports', 'inproc,shm').split(',');
  const loadBefore = loadavg()[0];
  const kernel = await createAttentionKernel({ threads: 1 });
  const clusters = Object.fromEntries(
    await Promise.all(transports.map(async (transport) => [transport, await createCluster({ workers: 1, transport, threads: 1, requestTimeoutMs: 600_000 })])),
  );
  const rows = [];
  try {
    for (const seq of seqs) {
      const random = seededRandom(seq);
      const [q, k, v] = [0, 1, 2].map(() => randomTensor([seq, HEADS, DIM], random));
      const contenders = { kernel: () => kernel.attend(q, k, v, { kind: 'none' }) };
      for (const [transport, cluster] of Object.entries(clusters)) contenders[transport] = () => cluster.attention(q, k, v, { strategy: 'single' });
      const { times, results } = await interleaved(contenders, rounds);
      const kernelMs = median(times.kernel);
      for (const transport of transports) {
        const requestMs = median(times[transport]);
        const computeMs = results[transport].map((result) => result.stats.ranks[0].computeMs);
        // One traced request after the timed ones: how the worker's compute splits into kernel calls and merges.
        const spans = (await clusters[transport].attention(q, k, v, { strategy: 'single', trace: true })).stats.spans[0];
        const kernelSpans = spans.filter((span) => span.name.startsWith('attend '));
        rows.push({
          seq,
          transport,
          kernelMs,
          requestMs,
          workerComputeMs: median(computeMs),
          pathMs: median(times[transport].map((ms, i) => ms - computeMs[i])),
          kernelCalls: kernelSpans.length,
          mergeMs: spans.filter((span) => span.name === 'merge').reduce((sum, span) => sum + span.durationMs, 0),
          requestOverKernel: requestMs / kernelMs,
          bestRequestOverKernel: Math.min(...times[transport]) / Math.min(...times.kernel),
        });
        process.stderr.write(`S ${seq} ${transport}: request ${requestMs.toFixed(1)} ms, kernel ${kernelMs.toFixed(1)} ms\n`);
      }
    }
  } finally {
    await Promise.all([kernel.close(), ...Object.values(clusters).map((cluster) => cluster.close())]);
  }
  writeReport('request', {
    title: `One-worker attention request vs the bare kernel call (H=${HEADS}, D=${DIM}, non-causal, 1 ORT thread, warm; ${rounds} interleaved rounds)`,
    columns: ['seq', 'transport', 'kernelMs', 'requestMs', 'workerComputeMs', 'pathMs', 'kernelCalls', 'mergeMs', 'requestOverKernel', 'bestRequestOverKernel'],
    rows,
    notes: [
      'kernelMs: AttentionKernel.attend(q, k, v) on the whole sequence, as a caller holding a kernel would call it (out + lse, fresh arrays).',
      "requestMs: createCluster({ workers: 1, transport }).attention(q, k, v, { strategy: 'single' }) from call to result, the same q, k, v.",
      "workerComputeMs: the worker's kernel calls and merges inside the request (its stats); pathMs: request minus that, per request: the call, q, k, v to the worker, out and lse back.",
      "kernelCalls, mergeMs: from one traced request after the timed ones, the worker's kernel calls (pieces of at most 2048 keys, the kernel workspace budget's cap at H 8, D 64) and the time it spent merging their results.",
      'Times are medians of the interleaved rounds (a 50 ms pause before each call); bestRequestOverKernel is the ratio of the fastest of each.',
      'Target: requestOverKernel <= 1.05 at S = 2048 and 8192.',
      `1-minute load average ${loadBefore.toFixed(1)} before, ${loadavg()[0].toFixed(1)} after (other processes share the cores).`,
    ],
  });
}
