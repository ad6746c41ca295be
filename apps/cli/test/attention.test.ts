import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { randomTensor, readFloat32NpyFile, referenceAttention, seededRandom, writeNpyFile } from '@seqpar/core';
import { choosePlan, loadProfile } from '@seqpar/planner';
import { runCli } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'seqpar-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

describe('seqpar attention', () => {
  it.each(['single', 'ring', 'striped', 'zigzag', 'token-ring', 'ulysses'])('--strategy %s matches the fp64 reference on .npy files', async (strategy) => {
    const [seq, hq, hkv, d] = [67, 6, 2, 16];
    const random = seededRandom(11);
    const [q, k, v] = [randomTensor([seq, hq, d], random), randomTensor([seq, hkv, d], random), randomTensor([seq, hkv, d], random)];
    await Promise.all([writeNpyFile(at('q.npy'), q), writeNpyFile(at('k.npy'), k), writeNpyFile(at('v.npy'), v)]);
    const out = at(`out-${strategy}.npy`);
    const lse = at(`lse-${strategy}.npy`);
    const run = await runCli([
      'attention',
      '--q',
      at('q.npy'),
      '--k',
      at('k.npy'),
      '--v',
      at('v.npy'),
      '--causal',
      '--out',
      out,
      '--lse',
      lse,
      '--strategy',
      strategy,
      '--workers',
      strategy === 'single' ? '1' : '2',
      '--json',
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ strategy, workers: strategy === 'single' ? 1 : 2, transport: 'inproc', seq });
    expect(summary.ranks).toHaveLength(summary.workers);
    for (const rank of summary.ranks)
      expect(Object.keys(rank).sort()).toEqual(['bytesRecv', 'bytesSent', 'commMs', 'computeMs', 'idleMs', 'peakRssMb', 'rank', 'visiblePairs', 'workspacePeakMb']);
    const expected = referenceAttention(q, k, v, { kind: 'causal-inclusive' });
    const gotOut = await readFloat32NpyFile(out);
    const gotLse = await readFloat32NpyFile(lse);
    expect(gotOut.shape).toEqual([seq, hq, d]);
    expect(gotLse.shape).toEqual([hq, seq]);
    expect(maxDiff(gotOut.data, expected.out)).toBeLessThanOrEqual(1e-5);
    expect(maxDiff(gotLse.data, expected.lse)).toBeLessThanOrEqual(1e-4);
  });

  it('--doc-lens and --window: exact against the fp64 reference, per-rank visible pairs in --json, bad masks exit 2', async () => {
    const [seq, hq, hkv, d] = [90, 4, 2, 8];
    const random = seededRandom(12);
    const [q, k, v] = [randomTensor([seq, hq, d], random), randomTensor([seq, hkv, d], random), randomTensor([seq, hkv, d], random)];
    await Promise.all([writeNpyFile(at('pq.npy'), q), writeNpyFile(at('pk.npy'), k), writeNpyFile(at('pv.npy'), v)]);
    const inputs = ['attention', '--q', at('pq.npy'), '--k', at('pk.npy'), '--v', at('pv.npy'), '--out', at('pout.npy'), '--lse', at('plse.npy')];
    const run = await runCli([...inputs, '--causal', '--doc-lens', '2,61,1,26', '--window', '9', '--strategy', 'zigzag', '--workers', '3', '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ strategy: 'zigzag', workers: 3, documents: [2, 61, 1, 26], window: 9 });
    // Document of 61 with a window of 9: 45 + 52 x 9; of 26: 45 + 17 x 9; of 2: 3; of 1: 1.
    expect(summary.ranks.reduce((sum: number, rank: { visiblePairs: number }) => sum + rank.visiblePairs, 0)).toBe(45 + 52 * 9 + 45 + 17 * 9 + 3 + 1);
    const expected = referenceAttention(q, k, v, { kind: 'sequence', mask: { causal: true, documents: [2, 61, 1, 26], window: 9 } });
    expect(maxDiff((await readFloat32NpyFile(at('pout.npy'))).data, expected.out)).toBeLessThanOrEqual(1e-5);
    expect(maxDiff((await readFloat32NpyFile(at('plse.npy'))).data, expected.lse)).toBeLessThanOrEqual(1e-4);
    for (const [args, message] of [
      [['--doc-lens', '2,61,1,25', '--causal'], /sum to 89 but the sequence has 90/],
      [['--doc-lens', '2,0,88'], /whole numbers >= 1/],
      [['--window', '9'], /needs causal/],
      [['--window', '0', '--causal'], /window must be a whole number >= 1/],
    ] as const) {
      const refused = await runCli([...inputs, ...args, '--strategy', 'ring', '--workers', '2']);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(message);
    }
  });

  it('--strategy auto runs what the planner picks for this host, exactly', async () => {
    // No calibrated profile here: the declared local profile decides, as it would on a fresh machine.
    const env = { SEQPAR_PROFILE: at('no-such-profile.json') };
    const short = await runCli(['attention', '--random', '--seq', '16', '--heads', '2', '--kv-heads', '1', '--head-dim', '8', '--strategy', 'auto', '--workers', '2', '--json'], {
      env,
    });
    expect(short.code).toBe(0);
    expect(JSON.parse(short.stdout)).toMatchObject({ strategy: 'single', workers: 1, plan: { strategy: 'single', degree: 1 } });

    const [seq, hq, hkv, d] = [1500, 4, 2, 32];
    const plan = choosePlan({ seq, causal: true, heads: hq, kvHeads: hkv, headDim: d }, loadProfile('local'), { maxWorkers: 2 });
    expect(plan.degree).toBe(2);
    const random = seededRandom(5);
    const [q, k, v] = [randomTensor([seq, hq, d], random), randomTensor([seq, hkv, d], random), randomTensor([seq, hkv, d], random)];
    await Promise.all([writeNpyFile(at('aq.npy'), q), writeNpyFile(at('ak.npy'), k), writeNpyFile(at('av.npy'), v)]);
    const args = [
      'attention',
      '--q',
      at('aq.npy'),
      '--k',
      at('ak.npy'),
      '--v',
      at('av.npy'),
      '--causal',
      '--out',
      at('aout.npy'),
      '--strategy',
      'auto',
      '--workers',
      '2',
      '--json',
    ];
    const long = await runCli(args, { env });
    expect(long.code).toBe(0);
    expect(long.stderr).toContain(`auto: ${plan.strategy} on 2 worker(s)`);
    expect(JSON.parse(long.stdout)).toMatchObject({ strategy: plan.strategy, workers: 2, plan: { strategy: plan.strategy, degree: 2 } });
    const expected = referenceAttention(q, k, v, { kind: 'causal-inclusive' });
    expect(maxDiff((await readFloat32NpyFile(at('aout.npy'))).data, expected.out)).toBeLessThanOrEqual(1e-5);
  });

  it('--strategy usp --ulysses-degree 2 on 4 workers (2 groups of 2) matches the fp64 reference', async () => {
    const [seq, hq, hkv, d] = [67, 8, 4, 16];
    const random = seededRandom(5);
    const [q, k, v] = [randomTensor([seq, hq, d], random), randomTensor([seq, hkv, d], random), randomTensor([seq, hkv, d], random)];
    await Promise.all([writeNpyFile(at('uq.npy'), q), writeNpyFile(at('uk.npy'), k), writeNpyFile(at('uv.npy'), v)]);
    const args = ['--q', at('uq.npy'), '--k', at('uk.npy'), '--v', at('uv.npy'), '--causal', '--out', at('uout.npy'), '--lse', at('ulse.npy')];
    const run = await runCli(['attention', ...args, '--strategy', 'usp', '--ulysses-degree', '2', '--workers', '4', '--json']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ strategy: 'usp', workers: 4, seq });
    const expected = referenceAttention(q, k, v, { kind: 'causal-inclusive' });
    expect(maxDiff((await readFloat32NpyFile(at('uout.npy'))).data, expected.out)).toBeLessThanOrEqual(1e-4);
    expect(maxDiff((await readFloat32NpyFile(at('ulse.npy'))).data, expected.lse)).toBeLessThanOrEqual(1e-3);
  });

  it('--random runs without files and --trace writes a Chrome trace with one pid per rank', async () => {
    const trace = at('trace.json');
    const run = await runCli([
      'attention',
      '--random',
      '--seq',
      '300',
      '--heads',
      '4',
      '--kv-heads',
      '4',
      '--head-dim',
      '8',
      '--strategy',
      'striped',
      '--workers',
      '3',
      '--causal',
      '--json',
      '--trace',
      trace,
    ]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ strategy: 'striped', workers: 3, seq: 300 });
    const { traceEvents } = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(trace, 'utf8')));
    const pids = new Set(traceEvents.filter((event: { ph: string }) => event.ph === 'X').map((event: { pid: number }) => event.pid));
    expect([...pids].sort()).toEqual([0, 1, 2]);
    expect(traceEvents.some((event: { ph: string }) => event.ph === 's')).toBe(true);
  });

  it('bad input exits 2 or 1 with one typed line, never a stack trace', async () => {
    writeFileSync(at('garbage.npy'), 'not numpy');
    const cases: Array<[string[], number, RegExp]> = [
      [['attention', '--q', at('missing.npy'), '--k', at('k.npy'), '--v', at('v.npy'), '--out', at('o.npy')], 2, /ERR_FILE_NOT_FOUND/],
      [['attention', '--q', at('garbage.npy'), '--k', at('k.npy'), '--v', at('v.npy'), '--out', at('o.npy')], 2, /ERR_NPY_FORMAT/],
      [
        ['attention', '--q', at('k.npy'), '--k', at('q.npy'), '--v', at('q.npy'), '--out', at('o.npy')],
        2,
        /ERR_SHAPE_MISMATCH: query heads \(2\) must be a multiple of kv heads \(6\)/,
      ],
      [['attention', '--random', '--seq', '8', '--heads', '4', '--kv-heads', '2', '--head-dim', '8', '--strategy', 'ulysses', '--workers', '3'], 2, /ERR_USAGE: ulysses/],
      [['attention', '--random', '--seq', '8'], 2, /ERR_USAGE/],
      [
        ['attention', '--random', '--seq', '8', '--heads', '4', '--kv-heads', '2', '--head-dim', '8', '--strategy', 'usp', '--ulysses-degree', '4', '--workers', '4'],
        2,
        /ERR_USAGE: usp needs the ulysses degree \(4\) to divide the kv heads \(2\)/,
      ],
      [
        ['attention', '--random', '--seq', '8', '--heads', '4', '--kv-heads', '2', '--head-dim', '8', '--strategy', 'ring', '--ulysses-degree', '2', '--workers', '2'],
        2,
        /ERR_USAGE: ulyssesDegree/,
      ],
      [['attention', '--workers', '0'], 2, /positive integer/],
      [['attention', '--random', '--seq', '8', '--heads', '2', '--kv-heads', '2', '--head-dim', '4', '--device', 'cuda'], 1, /ERR_DEVICE_UNAVAILABLE/],
    ];
    for (const [args, code, message] of cases) {
      const run = await runCli(args);
      expect(run.code, args.join(' ')).toBe(code);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
