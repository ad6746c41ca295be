import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UsageError } from '@seqpar/core';

/**
 * Checks, before any work, that each output file can be written: an existing file writable, or else its folder
 * existing and writable. A long run must not end in "cannot open" after the compute is spent.
 */
export async function checkWritable(outputs: Readonly<Record<string, string | undefined>>): Promise<void> {
  for (const [flag, path] of Object.entries(outputs)) {
    if (path === undefined) continue;
    const target = await stat(path).catch(() => undefined);
    if (target?.isDirectory()) throw new UsageError(`${flag} ${path} is a directory; give a file name`);
    const checked = target ? path : dirname(resolve(path));
    const reason = await access(checked, constants.W_OK).then(
      () => undefined,
      (error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? `folder ${checked} does not exist` : `${checked} is not writable (${error.code})`),
    );
    if (reason) throw new UsageError(`cannot write ${flag} ${path}: ${reason}`);
  }
}
