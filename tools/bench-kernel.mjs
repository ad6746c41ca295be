// Block attention kernel vs ONNX Runtime baselines, measured in one run:
// our kernel (out + lse, through the worker-thread path strategies use), ORT MatMul on the same FLOPs, and ORT's
// fused com.microsoft MultiHeadAttention (no lse). FLOPs = 4·Sq·Sk·H·D (QK^T and PV), non-causal.
import ort from 'onnxruntime-node';
import { randomTensor, seededRandom } from '@seqpar/core';
import { createAttentionKernel, GraphBuilder } from '@seqpar/kernels';
import { writeReport } from './bench-report.mjs';

const HEADS = 8;
const DIM = 64;
const SEQS = [1024, 2048, 4096];
const THREADS = [1, 2];
const REPEATS = 5;

const ROUNDS = 3;

/**
 * Median and best time of several contenders, each timed in blocks of REPEATS runs after a warm-up, blocks alternating over
 * ROUNDS rounds: a burst of load from other processes on the shared cores hits every contender alike, while a
 * pause before each block lets the previous contender's ORT pool threads stop spinning (they would steal a core).
 */
async function alternatingTimes(contenders) {
  const names = Object.keys(contenders);
  const times = Object.fromEntries(names.map((name) => [name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of names) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await contenders[name]();
      for (let i = 0; i < REPEATS; i++) {
        const started = performance.now();
        await contenders[name]();
        times[name].push(performance.now() - started);
      }
    }
  }
  const sorted = Object.fromEntries(names.map((name) => [name, times[name].sort((a, b) => a - b)]));
  return {
    median: Object.fromEntries(names.map((name) => [name, sorted[name][Math.floor(sorted[name].length / 2)]])),
    best: Object.fromEntries(names.map((name) => [name, sorted[name][0]])),
  };
}

async function session(build, threads) {
  const g = new GraphBuilder('baseline');
  build(g);
  return ort.InferenceSession.create(g.toModelBytes(21, { 'com.microsoft': 1 }), { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
}

export async function run() {
  const rows = [];
  for (const threads of THREADS) {
    const kernel = await createAttentionKernel({ threads });
    for (const seq of SEQS) {
      const random = seededRandom(seq);
      const q = randomTensor([seq, HEADS, DIM], random);
      const k = randomTensor([seq, HEADS, DIM], random);
      const v = randomTensor([seq, HEADS, DIM], random);
      const flops = 4 * seq * seq * HEADS * DIM;

      // Two batched matmuls with the attention's shapes: [H,S,D]x[H,D,S] then [H,S,S]x[H,S,D].
      const matmul = await session((g) => {
        const a = g.input('a', 'float', [HEADS, seq, DIM]);
        const b = g.input('b', 'float', [HEADS, DIM, seq]);
        const scores = g.op('MatMul', [a, b]);
        g.op('MatMul', [scores, a], {}, { outputName: 'y' });
        g.output('y', 'float', [HEADS, seq, DIM]);
      }, threads);
      const matmulFeeds = { a: new ort.Tensor('float32', q.data, [HEADS, seq, DIM]), b: new ort.Tensor('float32', k.data, [HEADS, DIM, seq]) };

      const shape = [1, seq, HEADS * DIM];
      const fused = await session((g) => {
        g.op(
          'MultiHeadAttention',
          [g.input('q', 'float', shape), g.input('k', 'float', shape), g.input('v', 'float', shape)],
          { num_heads: HEADS },
          { outputName: 'y', domain: 'com.microsoft' },
        );
        g.output('y', 'float', shape);
      }, threads);
      const fusedFeeds = { q: new ort.Tensor('float32', q.data, shape), k: new ort.Tensor('float32', k.data, shape), v: new ort.Tensor('float32', v.data, shape) };

      const { median, best } = await alternatingTimes({
        oursMs: () => kernel.attend(q, k, v, { kind: 'none' }),
        oursCausalMs: () => kernel.attend(q, k, v, { kind: 'causal-inclusive' }),
        matmulMs: () => matmul.run(matmulFeeds),
        fusedMs: () => fused.run(fusedFeeds),
      });
      await Promise.all([matmul.release(), fused.release()]);

      const { oursMs, oursCausalMs, matmulMs, fusedMs } = median;
      rows.push({
        threads,
        seq,
        oursMs,
        oursGflops: flops / oursMs / 1e6,
        oursCausalMs,
        matmulMs,
        matmulGflops: flops / matmulMs / 1e6,
        fusedMhaMs: fusedMs,
        oursOverFused: oursMs / fusedMs,
        bestOursOverFused: best.oursMs / best.fusedMs,
        oursOverMatmul: flops / oursMs / (flops / matmulMs),
      });
      process.stderr.write(`threads ${threads} S ${seq}: ours ${oursMs.toFixed(1)} ms, fused ${fusedMs.toFixed(1)} ms, matmul ${matmulMs.toFixed(1)} ms\n`);
    }
    await kernel.close();
  }
  writeReport('kernel', {
    title: `Block attention kernel (H=${HEADS}, D=${DIM}, non-causal unless noted; ${ROUNDS}x${REPEATS} runs each)`,
    columns: ['threads', 'seq', 'oursMs', 'oursGflops', 'oursCausalMs', 'matmulMs', 'matmulGflops', 'fusedMhaMs', 'oursOverFused', 'bestOursOverFused', 'oursOverMatmul'],
    rows,
    notes: [
      'oursMs: AttentionKernel.attend (out + lse) including the copy to and from its worker thread, as strategies call it.',
      'matmulGflops: ORT MatMul of the same two products; fusedMhaMs: com.microsoft MultiHeadAttention (no lse).',
      'Times are medians; bestOursOverFused is the ratio of the two fastest runs, less sensitive to other processes on the shared cores.',
      `Target: oursOverFused <= 1.1. Each contender timed in blocks of ${REPEATS} runs (after a warm-up and a 100 ms pause), blocks alternating over ${ROUNDS} rounds.`,
      "Unmasked blocks (oursMs) run ORT's fused MultiHeadAttention with one extra reference key and V widened by two channels, from which out and lse are exact (packages/kernels/src/fused-attention-graph.ts).",
      'What is left over the fused op: the wider V (measured alone: V head 66, 72 or 80 all cost the fused op 12-15% over 64), O(S·H·D) glue around the op (Concat/Split/Div, ~8% at S 1024, ~4% at 4096), and the worker-thread round trip with its copies (~1-2 ms).',
      'oursCausalMs runs the exact tiled graph (256-row tiles per head, keys stopping at the diagonal), whose max / exp / sum passes are separate ORT ops: unmasked it measured 1.2-1.4x the fused op.',
    ],
  });
}
