// Writes one benchmark's results as bench-results/<name>.json and a markdown table bench-results/<name>.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench-results');

export function machine() {
  return { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
}

/**
 * @param {string} name
 * @param {{ title: string, columns: string[], rows: Record<string, unknown>[], notes?: string[], extra?: object }} report
 */
export function writeReport(name, report) {
  mkdirSync(resultsDir, { recursive: true });
  const json = { name, date: new Date().toISOString(), machine: machine(), ...report };
  writeFileSync(join(resultsDir, `${name}.json`), `${JSON.stringify(json, null, 2)}\n`);
  const cell = (value) => (typeof value === 'number' ? formatNumber(value) : String(value ?? ''));
  const lines = [
    `# ${report.title}`,
    '',
    `${json.date} · ${json.machine.cpu} · ${json.machine.cores} cores · Node ${json.machine.node}`,
    '',
    `| ${report.columns.join(' | ')} |`,
    `| ${report.columns.map(() => '---').join(' | ')} |`,
    ...report.rows.map((row) => `| ${report.columns.map((column) => cell(row[column])).join(' | ')} |`),
    ...(report.notes?.length ? ['', ...report.notes.map((note) => `- ${note}`)] : []),
    '',
  ];
  writeFileSync(join(resultsDir, `${name}.md`), lines.join('\n'));
  process.stdout.write(`${lines.join('\n')}\nwrote bench-results/${name}.json and bench-results/${name}.md\n`);
}

function formatNumber(value) {
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(1) : value.toPrecision(3);
}
