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

async function median(run) {
  await run(); // warm-up: session creation, first allocation
  const times = [];
  for (let i = 0; i < REPEATS; i++) {
    const started = performance.now();
    await run();
    times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b)[Math.floor(REPEATS / 2)];
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

      const oursMs = await median(() => kernel.attend(q, k, v, { kind: 'none' }));
      const oursCausalMs = await median(() => kernel.attend(q, k, v, { kind: 'causal-inclusive' }));

      // Two batched matmuls with the attention's shapes: [H,S,D]x[H,D,S] then [H,S,S]x[H,S,D].
      const matmul = await session((g) => {
        const a = g.input('a', 'float', [HEADS, seq, DIM]);
        const b = g.input('b', 'float', [HEADS, DIM, seq]);
        const scores = g.op('MatMul', [a, b]);
        g.op('MatMul', [scores, a], {}, { outputName: 'y' });
        g.output('y', 'float', [HEADS, seq, DIM]);
      }, threads);
      const matmulFeeds = { a: new ort.Tensor('float32', q.data, [HEADS, seq, DIM]), b: new ort.Tensor('float32', k.data, [HEADS, DIM, seq]) };
      const matmulMs = await median(() => matmul.run(matmulFeeds));

      const fused = await session((g) => {
        const shape = [1, seq, HEADS * DIM];
        g.op('MultiHeadAttention', [g.input('q', 'float', shape), g.input('k', 'float', shape), g.input('v', 'float', shape)], { num_heads: HEADS }, { outputName: 'y', domain: 'com.microsoft' });
        g.output('y', 'float', shape);
      }, threads);
      const shape = [1, seq, HEADS * DIM];
      const fusedFeeds = { q: new ort.Tensor('float32', q.data, shape), k: new ort.Tensor('float32', k.data, shape), v: new ort.Tensor('float32', v.data, shape) };
      const fusedMs = await median(() => fused.run(fusedFeeds));
      await Promise.all([matmul.release(), fused.release()]);

      rows.push({
        threads,
        seq,
        oursMs,
        oursGflops: flops / oursMs / 1e6,
        oursCausalMs,
        matmulGflops: flops / matmulMs / 1e6,
        fusedMhaMs: fusedMs,
        oursOverFused: oursMs / fusedMs,
        oursOverMatmul: (flops / oursMs) / (flops / matmulMs),
      });
      process.stderr.write(`threads ${threads} S ${seq}: ours ${oursMs.toFixed(1)} ms, fused ${fusedMs.toFixed(1)} ms, matmul ${matmulMs.toFixed(1)} ms\n`);
    }
    await kernel.close();
  }
  writeReport('kernel', {
    title: `Block attention kernel (H=${HEADS}, D=${DIM}, non-causal unless noted; median of ${REPEATS})`,
    columns: ['threads', 'seq', 'oursMs', 'oursGflops', 'oursCausalMs', 'matmulGflops', 'fusedMhaMs', 'oursOverFused', 'oursOverMatmul'],
    rows,
    notes: [
      'oursMs: AttentionKernel.attend (out + lse) including the copy to and from its worker thread, as strategies call it.',
      'matmulGflops: ORT MatMul of the same two products; fusedMhaMs: com.microsoft MultiHeadAttention (no lse).',
      'Target: oursOverFused <= 1.1.',
    ],
  });
}
