import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { netnsSupport, seqparNamespaces } from '@seqpar/sim';
import { runCli } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'seqpar-netns-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const support = await netnsSupport();
if (!support.ok) console.warn(`seqpar netns run skipped: ${support.reason}`);

describe('seqpar netns', () => {
  it('refuses a negative rate before building anything (exit 2)', async () => {
    const run = await runCli(['netns', '--rate-mbit', '-1']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("option '--rate-mbit <r>' argument '-1' is invalid. expected a non-negative number");
  });

  it.skipIf(support.ok)('says why it cannot run here (exit 1)', async () => {
    const run = await runCli(['netns']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^seqpar: ERR_TRANSPORT_UNAVAILABLE: multi-host mode is not available here: /m);
  });

  it.skipIf(!support.ok)(
    'runs an exact request across namespaces through shaped links, writes the trace and leaves no namespace',
    async () => {
      const trace = join(dir, 'trace.json');
      const run = await runCli(['netns', '--workers', '2', '--seq', '256', '--causal', '--rate-mbit', '100', '--trace', trace, '--json'], { timeoutMs: 120_000 });
      expect(run.code, run.stderr).toBe(0);
      const summary = JSON.parse(run.stdout);
      expect(summary).toMatchObject({ strategy: 'ring', workers: 2, transport: 'ws', seq: 256, version: expect.any(String) });
      expect(summary.error.out).toBeLessThan(1e-4);
      expect(summary.error.lse).toBeLessThan(1e-3);
      for (const link of summary.links) expect(link.txBytes).toBeGreaterThan(0);
      expect(JSON.parse(readFileSync(trace, 'utf8')).traceEvents.length).toBeGreaterThan(0);
      const runId = (summary.namespaces[0] as string).replace(/-c$/, '-'); // seqpar-<pid>-<tag>-: the hub's and every endpoint's
      expect((await seqparNamespaces()).filter((name) => name.startsWith(runId))).toEqual([]);
    },
    150_000,
  );
});
