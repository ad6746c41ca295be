import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DECLARED_PROFILES, loadProfile, PROFILE_SCHEMA } from '@seqpar/planner';
import { runCli } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'seqpar-plan-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('seqpar plan', () => {
  it('--json prints one object with the choice and its alternatives', async () => {
    const result = await runCli(['plan', '--seq', '262144', '--workers', '8', '--causal', '--profile', 'a100-nvlink', '--json']);
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const plan = JSON.parse(lines[0]!);
    expect(plan.strategy).not.toBe('ring');
    expect(plan.degree).toBeGreaterThan(1);
    expect(plan.predictedMs).toBeGreaterThan(0);
    expect(plan.alternatives).toHaveLength(7);
    expect(plan.ulyssesDegree).toEqual(expect.any(Number));
    for (const a of plan.alternatives) expect(a).toEqual(expect.objectContaining({ strategy: expect.any(String), degree: expect.any(Number), feasible: expect.any(Boolean) }));
  });

  it('on two hosts of 8 H100 tries usp at every U, reports ulyssesDegree, and refuses ulysses beyond the kv heads', async () => {
    const llama70b = ['--causal', '--heads', '64', '--kv-heads', '8', '--head-dim', '128', '--profile', 'h100-2x8-ib', '--json'];
    const plan = JSON.parse((await runCli(['plan', '--seq', '16384', '--workers', '16', ...llama70b])).stdout);
    // At 16k a zigzag step's compute no longer hides its hop over InfiniBand; usp's hop overlaps 1/R of the work.
    expect(plan).toMatchObject({ strategy: 'usp', degree: 16, layout: 'zigzag', passKvOrQ: 'pass-kv' });
    expect([2, 4, 8]).toContain(plan.ulyssesDegree);
    const big = JSON.parse((await runCli(['plan', '--seq', '262144', '--workers', '16', ...llama70b])).stdout);
    expect(big.alternatives.find((a: { strategy: string }) => a.strategy === 'ulysses')).toMatchObject({ degree: 8, ulyssesDegree: 8 });
    expect(big.ulyssesDegree).toEqual(big.strategy === 'usp' ? expect.any(Number) : 1);
  });

  it('--window and --doc-lens price the visible pairs: a window plans faster than full causal, and both are echoed', async () => {
    const plan = async (...extra: string[]) =>
      JSON.parse((await runCli(['plan', '--seq', '65536', '--causal', '--workers', '4', '--profile', 'a100-pcie', '--json', ...extra])).stdout);
    const full = await plan();
    const windowed = await plan('--window', '1024');
    expect(windowed).toMatchObject({ window: 1024, causal: true });
    expect(full.window).toBeUndefined();
    expect(windowed.predictedMs).toBeLessThan(full.predictedMs / 2); // 1/32 of the causal pairs, with fixed costs on top
    const pack = await plan('--doc-lens', [49152, ...Array(16).fill(1024)].join(','));
    expect(pack.documents).toHaveLength(17);
    expect(pack.predictedMs).toBeLessThan(full.predictedMs);
    expect(pack.predictedMs).toBeGreaterThan(windowed.predictedMs);
  });

  it('refuses malformed --doc-lens and --window as usage errors (exit 2)', async () => {
    for (const bad of [
      ['--doc-lens', '1000,24'], // sums to 1024, not 2048
      ['--doc-lens', '2048,0'],
      ['--causal', '--window', '0'],
      ['--window', '64'], // a window needs --causal
      ['--doc-lens', '1024,x'],
    ]) {
      const result = await runCli(['plan', '--seq', '2048', '--workers', '2', '--profile', 'h100-nvlink', ...bad]);
      expect(result.code, bad.join(' ')).toBe(2);
      expect(result.stdout).toBe('');
    }
  });

  it('keeps a short request unsharded and prints a table without --json', async () => {
    const json = JSON.parse((await runCli(['plan', '--seq', '256', '--workers', '4', '--profile', 'h100-nvlink', '--json'])).stdout);
    expect(json.strategy).toBe('single');
    const text = await runCli(['plan', '--seq', '256', '--workers', '4', '--profile', 'h100-nvlink']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^plan: single on 1 worker/);
    expect(text.stdout).toMatch(/strategy\s+degree\s+predicted\s+memory\/rank/);
  });

  it('picks pass-Q for decode on a long cache and reads a profile file', async () => {
    const { name: _n, source: _s, ...fields } = DECLARED_PROFILES['h100-nvlink']!;
    const path = join(dir, 'slow.json');
    writeFileSync(path, JSON.stringify({ schema: PROFILE_SCHEMA, name: 'slow-h100', source: 'test', ...fields }));
    const result = await runCli([
      'plan',
      '--seq',
      '1',
      '--prefix',
      '1048576',
      '--workers',
      '8',
      '--causal',
      '--heads',
      '32',
      '--kv-heads',
      '8',
      '--head-dim',
      '128',
      '--profile',
      path,
      '--json',
    ]);
    expect(result.code).toBe(0);
    const plan = JSON.parse(result.stdout);
    expect(plan.profile).toBe('slow-h100');
    expect(['pass-q', 'none']).toContain(plan.passKvOrQ);
    expect(plan.alternatives.find((a: { strategy: string }) => a.strategy === 'zigzag').reason).toMatch(/pass-q/);
  });

  it('--calibrate measures this host, saves a profile that --profile calibrated reads back, and plans with it', async () => {
    const saved = process.env['SEQPAR_PROFILE'];
    process.env['SEQPAR_PROFILE'] = join(dir, 'calibrated', 'profile.json');
    try {
      const result = await runCli(['plan', '--calibrate', '--seq', '4096', '--workers', '2', '--causal', '--json']);
      expect(result.code).toBe(0);
      // How long it takes comes first, a busy host is named, and every measurement is told once.
      const lines = result.stderr.trim().split('\n');
      expect(lines[0]).toMatch(/^calibrating this host \(inproc transport\): about a minute on 2 idle cores/);
      const busy = lines.filter((line) => line.startsWith('warning: '));
      for (const line of busy) expect(line).toMatch(/^warning: this host is busy \(load average [\d.]+ on \d+ cores\): /);
      expect(new Set(lines).size).toBe(lines.length);
      expect(lines.filter((line) => line.startsWith('kernel none 512x16384:'))).toHaveLength(1);
      const plan = JSON.parse(result.stdout);
      expect(plan.calibrated).toBe(process.env['SEQPAR_PROFILE']);
      expect(plan.profile).toMatch(/^calibrated-/);
      const again = JSON.parse((await runCli(['plan', '--seq', '4096', '--workers', '2', '--causal', '--profile', 'calibrated', '--json'])).stdout);
      expect(again.profile).toBe(plan.profile);
      const { attentionFlops, linkBandwidth, linkLatencyMs, kernelTable, requestMsPerMiB, mergeMsPerMiB, hostThreads } = loadProfile('calibrated');
      // Kernel calls timed at the strategies' shapes, alone and two at once, and the runtime's own costs on real workers.
      expect(kernelTable!.queryRows).toEqual([64, 128, 256, 512]);
      expect(kernelTable!.keyRows).toEqual([64, 256, 1024, 4096, 16384]);
      for (const row of [...kernelTable!.aloneMs, ...kernelTable!.sharedMs]) for (const ms of row) expect(ms).toBeGreaterThan(kernelTable!.launchMs / 2);
      // More keys take longer: 512 x 16384 is 256x the work of 512 x 64.
      expect(kernelTable!.aloneMs[3]![4]!).toBeGreaterThan(10 * kernelTable!.aloneMs[3]![0]!);
      for (const figure of [requestMsPerMiB, mergeMsPerMiB]) expect(figure).toBeGreaterThanOrEqual(0);
      expect(kernelTable!.inRequestFactor).toBeGreaterThan(0.5);
      expect(hostThreads).toBe(1);
      // A 2-core CPU host: tens of GFLOP/s per thread, a link of 0.1-100 GB/s, latency under 10 ms.
      expect(attentionFlops).toBeGreaterThan(5e9);
      expect(attentionFlops).toBeLessThan(1e12);
      expect(linkBandwidth).toBeGreaterThan(1e8);
      expect(linkLatencyMs).toBeLessThan(10);
      expect((await runCli(['plan', '--calibrate', '--profile', 'local'])).code).toBe(2);
    } finally {
      if (saved === undefined) delete process.env['SEQPAR_PROFILE'];
      else process.env['SEQPAR_PROFILE'] = saved;
    }
  });

  it('exits 2 on usage errors and names the code of typed errors', async () => {
    const unknown = await runCli(['plan', '--seq', '10', '--workers', '2', '--profile', 'tpu-v9']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/ERR_UNKNOWN_PROFILE/);
    expect((await runCli(['plan', '--workers', '2'])).code).toBe(2);
    expect((await runCli(['plan', '--seq', '0', '--workers', '2'])).code).toBe(2);
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"schema": "seqpar-profile/1"}');
    const bad = await runCli(['plan', '--seq', '10', '--workers', '2', '--profile', broken]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/ERR_PROFILE_FORMAT/);
  });
});
