import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'seqpar-simulate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Visible pairs of a causal pack: each document its own triangle. */
const causalPairs = (lengths: number[]) => lengths.reduce((sum, l) => sum + (l * (l + 1)) / 2, 0);

describe('seqpar simulate', () => {
  it('prices a skewed pack and a window as their visible pairs (--doc-lens, --window), and refuses malformed ones (exit 2)', async () => {
    const seq = 16384;
    const simulate = async (...extra: string[]) => {
      const result = await runCli(['simulate', '--profile', 'a100-nvlink', '--workers', '2', '--seq', String(seq), '--causal', '--strategy', 'single,zigzag', '--json', ...extra]);
      expect(result.code).toBe(0);
      return JSON.parse(result.stdout) as { documents?: number[]; window?: number; results: { strategy: string; idealMs: number; predictedMs: number; rankBusy: number[] }[] };
    };
    const skewed = [12288, ...Array<number>(16).fill(256)];
    const [full, pack, windowed] = [await simulate(), await simulate('--doc-lens', skewed.join(',')), await simulate('--window', '1024')];
    expect(pack.documents).toEqual(skewed);
    expect(windowed.window).toBe(1024);
    // single's ideal time is its FLOPs at the profile's rate: exactly proportional to the pairs priced
    const single = (run: typeof full) => run.results.find((r) => r.strategy === 'single')!;
    expect(single(pack).idealMs / single(full).idealMs).toBeCloseTo(causalPairs(skewed) / causalPairs([seq]), 6);
    const windowPairs = causalPairs([1024]) + (seq - 1024) * 1024;
    expect(single(windowed).idealMs / single(full).idealMs).toBeCloseTo(windowPairs / causalPairs([seq]), 6);
    for (const run of [pack, windowed]) expect(run.results.every((r, i) => r.predictedMs < full.results[i]!.predictedMs)).toBe(true);
    for (const bad of [
      ['--doc-lens', '16384,0'],
      ['--doc-lens', '100'],
      ['--window', '0'],
    ]) {
      const refused = await runCli(['simulate', '--profile', 'a100-nvlink', '--workers', '2', '--seq', String(seq), '--causal', '--strategy', 'zigzag', ...bad]);
      expect(refused.code, bad.join(' ')).toBe(2);
    }
  });

  it('--json prints one object with a result per strategy, and --trace writes a Chrome trace', async () => {
    const trace = join(dir, 'trace.json');
    const result = await runCli([
      'simulate',
      '--profile',
      'a100-nvlink',
      '--workers',
      '8',
      '--seq',
      '262144',
      '--causal',
      '--strategy',
      'ring,striped,zigzag',
      '--json',
      '--trace',
      trace,
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    const { results } = JSON.parse(result.stdout);
    expect(results.map((r: { strategy: string }) => r.strategy)).toEqual(['ring', 'striped', 'zigzag']);
    for (const r of results) {
      expect(r.predictedMs).toBeGreaterThan(0);
      expect(r.utilization).toBeGreaterThan(0);
      expect(r.utilization).toBeLessThanOrEqual(1);
    }
    expect(results[0].predictedMs / results[1].predictedMs).toBeGreaterThanOrEqual(1.3);
    const events = JSON.parse(readFileSync(trace, 'utf8')).traceEvents as Array<{ pid: number; ph: string }>;
    expect(new Set(events.map((e) => e.pid)).size).toBe(8);
    expect(events.some((e) => e.ph === 'X')).toBe(true);
  });

  it('projects usp on two hosts with the ulysses degree asked, or the most that fit one host', async () => {
    const args = ['simulate', '--profile', 'h100-2x8-ib', '--workers', '16', '--seq', '65536', '--causal', '--heads', '64', '--kv-heads', '8', '--head-dim', '128', '--json'];
    const { results } = JSON.parse((await runCli([...args, '--strategy', 'usp,zigzag'])).stdout);
    expect(results[0]).toMatchObject({ strategy: 'usp', degree: 16, ulyssesDegree: 8 });
    expect(results[0].predictedMs).toBeGreaterThan(0);
    const two = JSON.parse((await runCli([...args, '--strategy', 'usp', '--ulysses-degree', '2'])).stdout);
    expect(two.results[0]).toMatchObject({ strategy: 'usp', ulyssesDegree: 2 });
    const refused = await runCli([...args, '--strategy', 'usp', '--ulysses-degree', '16']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/usp: degree 16 exceeds the 8 kv heads/);
  });

  it('exits 2 for an unknown strategy, a missing profile and Ulysses beyond the kv heads', async () => {
    expect((await runCli(['simulate', '--profile', 'local', '--workers', '2', '--seq', '100', '--strategy', 'bogus'])).code).toBe(2);
    expect((await runCli(['simulate', '--workers', '2', '--seq', '100', '--strategy', 'ring'])).code).toBe(2);
    const ulysses = await runCli(['simulate', '--profile', 'local', '--workers', '16', '--seq', '1000', '--strategy', 'ulysses', '--json']);
    expect(ulysses.code).toBe(2);
    expect(ulysses.stdout).toBe('');
    expect(ulysses.stderr).toMatch(/kv heads/);
  });
});
