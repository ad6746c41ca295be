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
 * This process's Node options minus the `@seqpar/source` export condition (which test runners add), for child
 * processes: they run compiled JavaScript and must resolve packages to `dist/`.
 */
export function compiledExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  return compiledOptions(execArgv).flatMap((option) => option.args);
}

/**
 * The options of compiledExecArgv that a worker thread needs: how modules load (conditions, loaders, preloads,
 * type stripping) and how warnings show. Everything else is dropped: a worker thread refuses per-process options
 * (`--max-old-space-size`, `--expose-gc`, ...) with ERR_WORKER_INVALID_EXEC_ARGV, and takes none it needs.
 */
export function threadExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  return compiledOptions(execArgv)
    .filter((option) => THREAD_FLAGS.has(option.flag))
    .flatMap((option) => option.args);
}

interface NodeOption {
  readonly flag: string;
  readonly value: string | undefined;
  /** The option as written: `--flag=value`, or `--flag` followed by its value. */
  readonly args: readonly string[];
}

/** Options whose value may follow as the next argument; a bare argument after any other flag is taken as its value too. */
const VALUE_FLAGS = new Set(['--conditions', '-C', '--import', '--require', '-r', '--loader', '--experimental-loader', '--disable-warning']);

const THREAD_FLAGS = new Set([
  ...VALUE_FLAGS,
  '--enable-source-maps',
  '--experimental-strip-types',
  '--experimental-transform-types',
  '--no-experimental-strip-types',
  '--experimental-require-module',
  '--experimental-vm-modules',
  '--no-warnings',
  '--no-deprecation',
  '--trace-warnings',
]);

const SOURCE_CONDITION = '@seqpar/source';

function compiledOptions(execArgv: readonly string[]): NodeOption[] {
  return parseNodeOptions(execArgv).filter((option) => !((option.flag === '--conditions' || option.flag === '-C') && option.value === SOURCE_CONDITION));
}

function parseNodeOptions(execArgv: readonly string[]): NodeOption[] {
  const options: { flag: string; value: string | undefined; args: string[] }[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    const last = options.at(-1);
    if (!arg.startsWith('-') && last) {
      // execArgv holds no script name, so a bare argument is the value of the flag before it.
      last.value ??= arg;
      last.args.push(arg);
      continue;
    }
    const equals = arg.indexOf('=');
    if (equals > 0) {
      options.push({ flag: arg.slice(0, equals), value: arg.slice(equals + 1), args: [arg] });
    } else if (VALUE_FLAGS.has(arg) && i + 1 < execArgv.length) {
      options.push({ flag: arg, value: execArgv[i + 1], args: [arg, execArgv[++i]!] });
    } else {
      options.push({ flag: arg, value: undefined, args: [arg] });
    }
  }
  return options;
}
