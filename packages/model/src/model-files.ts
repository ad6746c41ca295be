import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { SeqparError } from '@seqpar/core';

/** Where a model directory's weights are: model.safetensors, or an index and the shards its weight_map names. */
export interface WeightFiles {
  readonly index?: string;
  readonly shards: readonly string[];
}

export async function weightFiles(dir: string): Promise<WeightFiles> {
  const index = join(dir, 'model.safetensors.index.json');
  if (!existsSync(index)) return { shards: [join(dir, 'model.safetensors')] };
  let weightMap: unknown;
  try {
    weightMap = JSON.parse(await readFile(index, 'utf8')).weight_map;
  } catch (error) {
    throw new SeqparError('ERR_MODEL_FORMAT', `${index}: unreadable index (${(error as Error).message})`);
  }
  if (typeof weightMap !== 'object' || weightMap === null) throw new SeqparError('ERR_MODEL_FORMAT', `${index} has no weight_map`);
  const shards = new Set<string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    // A shard lives beside its index: a path would let the index point anywhere on the host.
    if (typeof shard !== 'string' || shard === '' || basename(shard) !== shard)
      throw new SeqparError('ERR_MODEL_FORMAT', `${index}: weight_map names ${JSON.stringify(shard)} for ${name}, not a file name in ${dir}`);
    shards.add(join(dir, shard));
  }
  return { index, shards: [...shards] };
}

/**
 * The identity of everything a loaded model is built from: for config.json, the index and every weight file,
 * its path, size, inode and change times in nanoseconds. Replacing any of them, in place or by rename, changes
 * it; a missing file counts as part of the identity (loading it reports the error).
 */
export async function modelIdentity(dir: string): Promise<string> {
  const { index, shards } = await weightFiles(dir);
  const files = [join(dir, 'config.json'), ...(index ? [index] : []), ...shards];
  const parts = await Promise.all(
    files.map(async (path) => {
      const info = await stat(path, { bigint: true }).catch(() => undefined);
      return info ? `${path}:${info.size}:${info.dev}:${info.ino}:${info.mtimeNs}:${info.ctimeNs}` : `${path}:missing`;
    }),
  );
  return parts.join('|');
}
