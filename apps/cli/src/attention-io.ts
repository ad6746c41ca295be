import { isSeqparError, readFloat32NpyFile, UsageError, writeNpyFile, type Tensor } from '@seqpar/core';

/** Reads q, k and v (float32 .npy); each must be named, or --random used instead. */
export async function loadAttentionInputs(qPath?: string, kPath?: string, vPath?: string): Promise<[Tensor, Tensor, Tensor]> {
  if (!qPath || !kPath || !vPath) throw new UsageError('give --q, --k and --v (.npy files), or --random');
  const read = Promise.all([qPath, kPath, vPath].map((path) => readFloat32NpyFile(path))) as Promise<[Tensor, Tensor, Tensor]>;
  // A missing or malformed input is the command line's fault, found before any work: exit 2, code kept.
  return read.catch((error: unknown) => {
    throw isSeqparError(error) ? new UsageError(error.message, error.code) : error;
  });
}

export async function saveAttentionOutputs(outPath: string, lsePath: string | undefined, out: Tensor, lse: Tensor): Promise<void> {
  await writeNpyFile(outPath, out);
  if (lsePath) await writeNpyFile(lsePath, lse);
}
