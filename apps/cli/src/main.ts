import { Command, CommanderError } from 'commander';
import { isSeqparError } from '@seqpar/core';
import { commands } from './commands/index.js';
import { exitOnInterrupt } from './interrupt.js';
import { printError } from './output.js';
import { VERSION } from './version.js';

/** Commands that run until signalled and shut down gracefully on SIGINT themselves. */
const SERVES_UNTIL_SIGNALLED = new Set(['coordinator', 'worker']);

/** Builds the `seqpar` program: one file per command under commands/, each exporting `register(program)`. */
export function buildProgram(): Command {
  const program = new Command('seqpar')
    .description(
      'Exact attention over long contexts, sharded by sequence across worker processes.\n' +
        'Strategies: single, ring, striped, zigzag, token-ring, ulysses (or auto). Tensors are NumPy .npy (float32).',
    )
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .hook('preAction', (_program, command) => {
      if (!SERVES_UNTIL_SIGNALLED.has(command.name())) exitOnInterrupt();
    });
  for (const register of commands) register(program);
  return program;
}

/**
 * Runs the CLI and returns the exit code: 0 ok, 2 when the command line or its input files are wrong (found before
 * work starts), 1 when something fails while running; 130 after Ctrl-C.
 */
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
