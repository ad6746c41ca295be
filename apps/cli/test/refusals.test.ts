import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

// Each refusal: the exit code of the rule (2: the command line or its inputs are wrong, found before work starts;
// 1: a failure while running) and a message that says what to change.
const dir = mkdtempSync(join(tmpdir(), 'seqpar-refusals-'));
const at = (name: string) => join(dir, name);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const SMALL = ['--random', '--seq', '256', '--heads', '2', '--kv-heads', '1', '--head-dim', '16'];

describe('seqpar refuses early, with the reason', () => {
  beforeAll(async () => {
    expect((await runCli(['make-tiny-model', '--out', at('model')])).code).toBe(0);
  });

  it('a 10M-token request that cannot fit, within 15 s and before allocating it', async () => {
    const started = performance.now();
    const run = await runCli(['attention', '--random', '--seq', '10000000', '--heads', '1', '--kv-heads', '1', '--head-dim', '64', '--workers', '2', '--strategy', 'ring']);
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^seqpar: ERR_NO_FEASIBLE_PLAN: S 10000000, .* needs [\d.]+ GiB/m);
    const eightHeads = await runCli(['attention', '--random', '--seq', '10000000', '--heads', '8', '--kv-heads', '1', '--head-dim', '64']);
    expect(eightHeads.code).toBe(2);
    expect(eightHeads.stderr).toContain("over Node's 4.00 GiB limit per array");
  });

  it('an --out that cannot be written, before computing', async () => {
    const run = await runCli(['attention', ...SMALL, '--out', at('missing/out.npy')]);
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(`seqpar: ERR_USAGE: cannot write --out ${at('missing/out.npy')}: folder ${at('missing')} does not exist`);
  });

  it('a missing input file exits 2 with its code', async () => {
    const run = await runCli(['attention', '--q', at('nope.npy'), '--k', at('nope.npy'), '--v', at('nope.npy'), '--out', at('out.npy')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^seqpar: ERR_FILE_NOT_FOUND: /);
  });

  it.each(['0', '1.5', 'x'])('--top-p %s outside (0, 1]', async (topP) => {
    const run = await runCli(['generate', '--model', at('model'), '--prompt', 'hi', '--top-p', topP]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`option '--top-p <p>' argument '${topP}' is invalid. expected a number in (0, 1]`);
    expect(run.stderr).not.toContain('prefill:');
  });

  it('prints the prefill banner only once the request is running', async () => {
    const badTokens = at('bad-tokens.json');
    await import('node:fs/promises').then((fs) => fs.writeFile(badTokens, '[1, 2, 999999]'));
    const refused = await runCli(['generate', '--model', at('model'), '--prompt-tokens', badTokens]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).not.toContain('prefill:');
    const ran = await runCli(['generate', '--model', at('model'), '--prompt', 'hello', '--max-new-tokens', '2', '--workers', '2']);
    expect(ran.code).toBe(0);
    expect(ran.stderr).toMatch(/^prefill: \d+ tokens across 2 worker\(s\) \(in-process ranks\) with zigzag$/m);
  });

  it('--workers 2 --strategy single says it uses one worker', async () => {
    const run = await runCli(['attention', ...SMALL, '--workers', '2', '--strategy', 'single', '--json']);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('note: --strategy single uses one worker (--workers 2 ignored)');
    expect(JSON.parse(run.stdout)).toMatchObject({ workers: 1, version: expect.any(String) });
  });

  it('--timeout ends a request that runs longer with ERR_TIMEOUT, exit 1', async () => {
    const run = await runCli([
      'attention',
      '--random',
      '--seq',
      '8192',
      '--heads',
      '8',
      '--kv-heads',
      '2',
      '--head-dim',
      '64',
      '--strategy',
      'ring',
      '--workers',
      '2',
      '--timeout',
      '0.05',
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^seqpar: ERR_TIMEOUT: attention request did not finish within 50 ms/m);
  });

  it('100 in-process workers raise no MaxListenersExceededWarning', async () => {
    const run = await runCli(['attention', '--random', '--seq', '200', '--heads', '2', '--kv-heads', '1', '--head-dim', '8', '--workers', '100', '--strategy', 'ring']);
    expect(run.code).toBe(0);
    expect(run.stderr).not.toContain('MaxListenersExceededWarning');
  });
});
