import { describe, expect, it } from 'vitest';
import { compiledExecArgv, runnableEntry, threadExecArgv } from '../src/index.js';

describe('runnableEntry', () => {
  it('maps a source module to its compiled sibling in dist/', () => {
    const url = runnableEntry(new URL('../src/errors.ts', import.meta.url).href, 'errors');
    expect(url.pathname).toMatch(/\/packages\/core\/dist\/errors\.js$/);
  });

  it('fails with a typed error when the compiled entry is missing', () => {
    expect(() => runnableEntry(new URL('../src/errors.ts', import.meta.url).href, 'no-such-entry')).toThrow(expect.objectContaining({ code: 'ERR_INTERNAL' }));
  });
});

describe('compiledExecArgv and threadExecArgv', () => {
  const argv = [
    '--max-old-space-size=4096',
    '--conditions',
    '@seqpar/source',
    '--import',
    'tsx',
    '-C=custom',
    '--expose-gc',
    '--stack-size',
    '2000',
    '--enable-source-maps',
    '--conditions=@seqpar/source',
  ];

  it('keeps every option for a child process but the source condition', () => {
    expect(compiledExecArgv(argv)).toEqual(['--max-old-space-size=4096', '--import', 'tsx', '-C=custom', '--expose-gc', '--stack-size', '2000', '--enable-source-maps']);
  });

  it('keeps only the module-loading and warning options for a worker thread, values and all', () => {
    expect(threadExecArgv(argv)).toEqual(['--import', 'tsx', '-C=custom', '--enable-source-maps']);
    expect(threadExecArgv(['--require', './setup.cjs', '--max-semi-space-size', '64', '-r', 'x'])).toEqual(['--require', './setup.cjs', '-r', 'x']);
  });
});
