import { readFile } from 'node:fs/promises';
import { UsageError } from '@seqpar/core';

/** The cluster's shared secret from `--token-file`: the file's text without surrounding whitespace, never empty. */
export async function readTokenFile(path: string | undefined): Promise<string> {
  if (!path) throw new UsageError('--token-file is required to join or use a cluster');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read the token file '${path}': ${(error as Error).message}`, 'ERR_FILE_NOT_FOUND');
  }
  const token = text.trim();
  if (!token) throw new UsageError(`the token file '${path}' is empty`);
  return token;
}
