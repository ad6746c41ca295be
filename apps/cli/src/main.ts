import { Command, CommanderError } from 'commander';
import { isSeqparError } from '@seqpar/core';
import { commands } from './commands/index.js';
import { printError } from './output.js';

/** Builds the `seqpar` program: one file per command under commands/, each exporting `register(program)`. */
export function buildProgram(): Command {
  const program = new Command('seqpar')
    .description(
      'Exact attention over long contexts, sharded by sequence across worker processes.\n' +
        'Strategies: single, ring, striped, zigzag, token-ring, ulysses (or auto). Tensors are NumPy .npy (float32).',
    )
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of commands) register(program);
  return program;
}

/** Runs the CLI and returns the exit code: 0 ok, 1 failure (typed error on stderr), 2 usage error. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    printError(error);
    return isSeqparError(error) ? error.exitCode : 1;
  }
}
