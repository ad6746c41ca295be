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

export function sessionOptions(options: ExecutionOptions): InferenceSession.SessionOptions {
  const providers: InferenceSession.ExecutionProviderConfig[] = options.device === 'cuda' ? [{ name: 'cuda', deviceId: options.deviceIndex ?? 0 }] : ['cpu'];
  return {
    executionProviders: providers,
    intraOpNumThreads: options.threads ?? 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // ORT logs a missing provider at error level itself; we report it as a typed error instead.
    logSeverityLevel: 4,
  };
}

/** How to get the CUDA provider, for the error when it is missing. */
export const CUDA_INSTALL_HINT =
  "onnxruntime-node's CUDA execution provider is not installed; on a machine with CUDA 12, reinstall it with its GPU binaries: " +
  '`npm install onnxruntime-node --onnxruntime-node-install=cuda12` (or ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node), then run with --device cuda';
