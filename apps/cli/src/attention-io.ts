import { readFloat32NpyFile, UsageError, writeNpyFile, type Tensor } from '@seqpar/core';

/** Reads q, k and v (float32 .npy); each must be named, or --random used instead. */
export async function loadAttentionInputs(qPath?: string, kPath?: string, vPath?: string): Promise<[Tensor, Tensor, Tensor]> {
  if (!qPath || !kPath || !vPath) throw new UsageError('give --q, --k and --v (.npy files), or --random');
  return Promise.all([qPath, kPath, vPath].map((path) => readFloat32NpyFile(path))) as Promise<[Tensor, Tensor, Tensor]>;
}

export async function saveAttentionOutputs(outPath: string, lsePath: string | undefined, out: Tensor, lse: Tensor): Promise<void> {
  await writeNpyFile(outPath, out);
  if (lsePath) await writeNpyFile(lsePath, lse);
}
