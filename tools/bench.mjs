#!/usr/bin/env node
// `npm run bench -- <name> [options]` runs tools/bench-<name>.mjs against the built packages (dist/).
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((file) => file.startsWith('bench-') && file.endsWith('.mjs') && file !== 'bench-report.mjs')
  .map((file) => file.slice('bench-'.length, -'.mjs'.length));
const [name, ...rest] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  process.stderr.write(`usage: npm run bench -- <${available.join('|')}> [options]\n`);
  process.exit(2);
}
const bench = await import(pathToFileURL(join(here, `bench-${name}.mjs`)).href);
await bench.run(rest);
