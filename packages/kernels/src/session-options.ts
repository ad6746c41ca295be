import type { InferenceSession } from 'onnxruntime-node';

export type Device = 'cpu' | 'cuda';

export interface ExecutionOptions {
  /** 'cpu' (default) or 'cuda' (needs onnxruntime-node's CUDA binaries). */
  readonly device?: Device;
  /** GPU index for 'cuda'. */
  readonly deviceIndex?: number;
  /** ONNX Runtime intra-op threads; default 1, since each worker drives its own device. */
  readonly threads?: number;
}

/**
 * How a session holds its working memory. ONNX Runtime's CPU arena (per session, kept at its largest run until the
 * session is released) makes a fused attention call 14-28% faster than malloc at 512 x 2048..16384 (the fresh
 * pages of each large buffer), and its memory pattern (one block planned per input shape) runs the masked graph's
 * many small ops about twice as fast as without. A model has two token-local graphs per layer, whose arenas would
 * add up (a 16k-token prefill on 2 ranks held ~540 MB of them per rank); without an arena they share one malloc
 * heap, their row tiles (row-tiles.ts) keep each buffer small enough to be reused from it, and without a pattern
 * no run asks for one tile-sized block at once. The fused attention graph needs no pattern either (a few large
 * ops; measured the same speed) and without one keeps ~50 MB less per rank at a 16k-token prefill on 2 ranks.
 */
export interface SessionMemory {
  readonly arena: boolean;
  readonly pattern: boolean;
}

/** What a session gets unless its loader says otherwise: both, for speed. */
export const FAST_SESSION_MEMORY: SessionMemory = { arena: true, pattern: true };

export function sessionOptions(options: ExecutionOptions, memory: SessionMemory = FAST_SESSION_MEMORY): InferenceSession.SessionOptions {
  const providers: InferenceSession.ExecutionProviderConfig[] = options.device === 'cuda' ? [{ name: 'cuda', deviceId: options.deviceIndex ?? 0 }] : ['cpu'];
  return {
    executionProviders: providers,
    intraOpNumThreads: options.threads ?? 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // ORT logs a missing provider at error level itself; we report it as a typed error instead.
    logSeverityLevel: 4,
    enableCpuMemArena: memory.arena,
    enableMemPattern: memory.pattern,
  };
}

/** How to get the CUDA provider, for the error when it is missing. */
export const CUDA_INSTALL_HINT =
  "onnxruntime-node's CUDA execution provider is not installed; on a machine with CUDA 12, reinstall it with its GPU binaries: " +
  '`npm install onnxruntime-node --onnxruntime-node-install=cuda12` (or ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node), then run with --device cuda';
