import { describe, expect, it } from 'vitest';
import { runnableEntry } from '../src/index.js';

describe('runnableEntry', () => {
  it('maps a source module to its compiled sibling in dist/', () => {
    const url = runnableEntry(new URL('../src/errors.ts', import.meta.url).href, 'errors');
    expect(url.pathname).toMatch(/\/packages\/core\/dist\/errors\.js$/);
  });

  it('fails with a typed error when the compiled entry is missing', () => {
    expect(() => runnableEntry(new URL('../src/errors.ts', import.meta.url).href, 'no-such-entry')).toThrow(
      expect.objectContaining({ code: 'ERR_INTERNAL' }),
    );
  });
});
