import { isSeqparError } from '@seqpar/core';
import { VERSION } from './version.js';

/** `--json` prints exactly one JSON object on stdout, led by the seqpar version that made it; everything else goes to stderr. */
export function printJson(value: object): void {
  process.stdout.write(`${JSON.stringify({ version: VERSION, ...value })}\n`);
}

export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** One line with the error's stable code; the stack only when SEQPAR_DEBUG is set. */
export function printError(error: unknown): void {
  if (isSeqparError(error)) {
    log(`seqpar: ${error.code}: ${error.message}`);
  } else {
    const message = error instanceof Error ? error.message : String(error);
    log(`seqpar: ERR_INTERNAL: ${message}`);
  }
  if (process.env['SEQPAR_DEBUG'] && error instanceof Error && error.stack) log(error.stack);
}
