import { SeqparError, type Tensor } from '@seqpar/core';
import { AttentionKernel, DEFAULT_PRIORITY, withComputePriority } from '@seqpar/kernels';
import { generateOnRank, ModelCache, type RankGenerationOptions } from '@seqpar/model';
import type { WorkerOp } from './worker-ops.js';

/** What the coordinator tells every rank of a generation (cluster-generate.ts), besides the prompt tensor. */
export interface GenerateArgs extends RankGenerationOptions {
  /** Absolute path of the model directory, the same on every worker's host. */
  readonly modelDir: string;
  /** Query rows per compute call of the prefill at most (ClusterGenerateOptions.prefillChunk). */
  readonly prefillChunk?: number;
}

/** The models this process has loaded, for every rank it runs. */
export const models = new ModelCache();

/**
 * One rank of a generation in a worker process: it loads the model directory itself, builds its layer graphs on
 * its compute thread (kept in the process's model cache until a file of the model changes), and runs
 * the shared rank loop over the cluster's data plane. Tokens it samples and rank 0's prefill progress stream to
 * the coordinator as partial replies; the reply carries its KV cache size and, with `allLogits`, its prompt
 * positions and logits. Its KV cache share is dropped when the call returns, fails or is aborted.
 * Tensors: [prompt ids as float32 (exact below 2^24)].
 */
export const generateOp: WorkerOp = async (ctx, { args, tensors }, emit) => {
  const options = args as unknown as GenerateArgs;
  const prompt = tensors[0];
  if (!prompt || typeof options.modelDir !== 'string') throw new SeqparError('ERR_BAD_FRAME', 'generate needs a model directory and the prompt');
  const kernel = ctx.kernel;
  if (!(kernel instanceof AttentionKernel)) throw new SeqparError('ERR_INTERNAL', 'generate needs an ONNX Runtime kernel to share its compute thread');
  const result = await models.use(
    options.modelDir,
    kernel.thread,
    (model) =>
      withComputePriority(
        DEFAULT_PRIORITY,
        () =>
          generateOnRank(ctx, model, Int32Array.from(prompt.data), options, {
            onToken: (token, index) => emit({ token, index }),
            ...(ctx.rank === 0 ? { onPrefillLayer: (layer: number) => emit({ layer }) } : {}),
          }),
        options.prefillChunk,
      ),
    ctx.recorder,
  );
  const logits: Tensor[] = result.logits ? [{ data: Float32Array.from(result.positions), shape: [result.positions.length] }, result.logits] : [];
  return { header: { kvCacheMb: result.kvCacheMb }, tensors: logits };
};
