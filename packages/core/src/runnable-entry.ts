import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SeqparError } from './errors.js';

/**
 * The URL of a compiled entry script (a worker thread or a child process) next to the calling module.
 *
 * Worker threads and child processes run plain JavaScript, but tests import our TypeScript sources (the
 * `@seqpar/source` condition). So when the caller is `pkg/src/x.ts`, this points at `pkg/dist/<name>.js`,
 * which `tsc -b` (run by `npm install` and `npm test`) keeps current.
 */
export function runnableEntry(callerUrl: string, name: string): URL {
  const fromSource = callerUrl.endsWith('.ts');
  const base = fromSource ? callerUrl.replace(/\/src\/([^/]*\/)*[^/]*\.ts$/, (match) => match.replace('/src/', '/dist/')) : callerUrl;
  const url = new URL(`./${name}.js`, base);
  if (!existsSync(fileURLToPath(url))) {
    throw new SeqparError('ERR_INTERNAL', `missing compiled entry ${fileURLToPath(url)}: run \`npm run build\``);
  }
  return url;
}

/**
 * This process's Node options minus the `@seqpar/source` export condition (which test runners add), for worker
 * threads and child processes: they run compiled JavaScript and must resolve packages to `dist/`.
 */
export function compiledExecArgv(): string[] {
  const args = process.execArgv;
  return args.filter((arg, i) => {
    if (arg === '--conditions=@seqpar/source' || arg === '-C=@seqpar/source') return false;
    if (arg === '@seqpar/source' && (args[i - 1] === '--conditions' || args[i - 1] === '-C')) return false;
    if ((arg === '--conditions' || arg === '-C') && args[i + 1] === '@seqpar/source') return false;
    return true;
  });
}
