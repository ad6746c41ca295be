import { resolve } from 'node:path';
import { UsageError, type Tensor } from '@seqpar/core';
import {
  checkGeneration,
  GENERATE_TIMEOUT_MS,
  tokenEvent,
  prefillProgress,
  readModelConfig,
  streamGeneration,
  summarize,
  type GenerateEvent,
  type GenerateSummary,
} from '@seqpar/model';
import type { Coordinator } from '../coordinator/coordinator.js';
import type { GenerateArgs } from '../worker/generate-op.js';
import type { ClusterGenerateOptions } from './cluster-client.js';

/**
 * Generation with one rank per worker (generate-op.ts runs the rank loop there): one request to the cluster, so
 * its queue, deadline, abort and dead-rank handling apply, and the world is reset (every KV cache share dropped)
 * when it ends abnormally. Tokens arrive as partial replies and are yielded as they come. The model directory is
 * read here for its config (checks before any worker starts) and by every worker: the same path on every host.
 */
export async function* generateOnCluster(
  coordinator: Coordinator,
  modelDir: string,
  prompt: readonly number[],
  options: ClusterGenerateOptions,
): AsyncGenerator<GenerateEvent, GenerateSummary> {
  const dir = resolve(modelDir);
  const config = await readModelConfig(dir);
  const degree = checkGeneration(config, prompt, { ...options, workers: coordinator.workers });
  checkPrefillChunk(options.prefillChunk);
  const { signal, timeoutMs, onPrefillProgress, ...rankOptions } = options;
  // `eos` lets the coordinator's generation batch end a session at an end-of-sequence token.
  const args: GenerateArgs & { eos: number[] } = { ...definedOnly(rankOptions), modelDir: dir, eos: [...config.eosTokenIds] };
  const progress = prefillProgress(config, prompt.length, onPrefillProgress);
  const ids: Tensor = { data: Float32Array.from(prompt), shape: [prompt.length] };
  // Aborted by the caller or when the consumer stops reading: the coordinator then drops the request everywhere.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) stop.abort();
  try {
    const streamed = yield* streamGeneration(prompt.length, (push) =>
      coordinator.submit(
        'generate',
        Array.from({ length: degree }, () => ({ args: { ...args }, tensors: [ids] })),
        {
          timeoutMs: timeoutMs ?? GENERATE_TIMEOUT_MS,
          signal: stop.signal,
          onPartial: (_rank, header) => (typeof header.token === 'number' ? push(tokenEvent(header)) : progress?.(Number(header.layer))),
        },
      ),
    );
    const results = streamed.result.map((reply) => ({
      kvCacheMb: Number(reply.header.kvCacheMb),
      positions: Int32Array.from(reply.tensors[0]?.data ?? []),
      ...(reply.tensors[1] ? { logits: reply.tensors[1] } : {}),
    }));
    const stats = streamed.result.map((reply) => reply.stats);
    return summarize(streamed, options.strategy, stats, results, prompt.length, config.vocabSize, options.allLogits ?? false);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    stop.abort();
  }
}

/** Pieces are cut on whole 64-row units (row tiles and attention pieces alike), so a chunk is a number of them. */
export function checkPrefillChunk(rows: number | undefined, name = 'prefillChunk'): void {
  if (rows === undefined || (Number.isInteger(rows) && rows >= 64 && rows % 64 === 0)) return;
  const lower = Number.isFinite(rows) ? Math.max(64, Math.floor(rows / 64) * 64) : 64;
  throw new UsageError(`${name} must be a positive multiple of 64 query rows, got ${rows} (try ${lower} or ${lower + 64})`);
}

/** Options as a control message carries them: no undefined fields. */
function definedOnly<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}
