import { readFileSync } from 'node:fs';

/** The CLI package's version (kept equal to the published root package's): `--version` and every `--json` object. */
export const VERSION: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
