import { mkdtempSync, readFileSync, rmSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFloat32NpyFile } from '@seqpar/core';
import { killStarted, startCluster } from './cli-process.js';
import { runCli, type CliResult } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'seqpar-cli-gen-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

beforeAll(async () => {
  const made = await runCli(['make-tiny-model', '--out', at('model'), '--layers', '2', '--hidden', '32', '--heads', '4', '--kv-heads', '2', '--vocab', '300', '--dtype', 'bf16']);
  expect(made.code).toBe(0);
  writeFileSync(at('prompt.json'), JSON.stringify(Array.from({ length: 41 }, (_, i) => (i * 37) % 300)));
});

describe('seqpar generate', () => {
  it('--json reports tokens and timings; every strategy generates the same greedy tokens as one worker', async () => {
    const base = ['generate', '--model', at('model'), '--prompt-tokens', at('prompt.json'), '--max-new-tokens', '4', '--greedy', '--json'];
    const single = await runCli([...base, '--strategy', 'single', '--workers', '1', '--dump-logits', at('logits-1.npy')]);
    expect(single.code).toBe(0);
    const summary = JSON.parse(single.stdout);
    expect(summary).toMatchObject({ strategy: 'single', workers: 1, promptTokens: 41 });
    expect(summary.tokens).toHaveLength(4);
    for (const key of ['ttftMs', 'prefillTokensPerSec', 'decodeTokensPerSec']) expect(summary[key]).toBeGreaterThan(0);
    const logits = await readFloat32NpyFile(at('logits-1.npy'));
    expect(logits.shape).toEqual([41, 300]);
    for (const strategy of ['ring', 'zigzag', 'token-ring']) {
      const run = await runCli([...base, '--strategy', strategy, '--workers', '3', '--dump-logits', at(`logits-${strategy}.npy`)]);
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout).tokens).toEqual(summary.tokens);
      const sharded = await readFloat32NpyFile(at(`logits-${strategy}.npy`));
      const scale = Math.max(...Array.from(logits.data, Math.abs));
      expect(Math.max(...Array.from(sharded.data, (x, i) => Math.abs(x - logits.data[i]!))) / scale).toBeLessThanOrEqual(1e-4);
    }
  });

  it('streams text for a text prompt and prints metrics on stderr', async () => {
    const run = await runCli(['generate', '--model', at('model'), '--prompt', 'hello world', '--max-new-tokens', '3', '--workers', '2']);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/prefill: \d+\/\d+ tokens · \d+ tok\/s · ETA [\d.]+ s/); // the progress bar, as lines off a terminal
    expect(run.stderr).toMatch(/TTFT \d+ ms · prefill \d+ tok\/s · decode/);
    expect(run.stderr).toMatch(/KV cache per rank: rank 0 [\d.]+ MiB, rank 1 [\d.]+ MiB/);
  });

  it('--demo runs with no files: a tiny model, a long prompt, the whole pipeline on two workers', async () => {
    const run = await runCli(['generate', '--demo', '--max-new-tokens', '3', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ strategy: 'zigzag', workers: 2 });
    expect(summary.promptTokens).toBeGreaterThan(4000);
    expect(summary.tokens).toHaveLength(3);
  });

  it('bad models and prompts give typed errors and exit 1 or 2', async () => {
    const broken = at('broken');
    await runCli(['make-tiny-model', '--out', broken]);
    truncateSync(join(broken, 'model.safetensors'), statSync(join(broken, 'model.safetensors')).size - 64);
    const wrongType = at('wrong-type');
    await runCli(['make-tiny-model', '--out', wrongType]);
    const config = JSON.parse(readFileSync(join(wrongType, 'config.json'), 'utf8'));
    writeFileSync(join(wrongType, 'config.json'), JSON.stringify({ ...config, model_type: 'gpt2' }));
    writeFileSync(at('empty.json'), '[]');
    const misshapen = at('misshapen');
    await runCli(['make-tiny-model', '--out', misshapen]);
    writeFileSync(join(misshapen, 'config.json'), JSON.stringify({ ...config, hidden_size: 48 }));
    const shortContext = at('short-context');
    await runCli(['make-tiny-model', '--out', shortContext]);
    writeFileSync(join(shortContext, 'config.json'), JSON.stringify({ ...config, max_position_embeddings: 16 }));
    const cases: Array<[string[], number, RegExp]> = [
      [['--model', at('nowhere'), '--prompt', 'x'], 1, /ERR_FILE_NOT_FOUND/],
      [['--model', broken, '--prompt', 'x'], 1, /ERR_MODEL_FORMAT: .*truncated/],
      [['--model', wrongType, '--prompt', 'x'], 1, /ERR_UNSUPPORTED_MODEL/],
      [['--model', at('model'), '--prompt-tokens', at('empty.json')], 2, /ERR_PROMPT: the prompt is empty/],
      [['--model', at('model'), '--prompt', 'x', '--max-new-tokens', '200000'], 2, /ERR_PROMPT: .*max_position_embeddings/],
      [['--model', misshapen, '--prompt', 'x'], 1, /ERR_MODEL_FORMAT: weight .* has shape .* config.json implies/],
      [
        ['--model', shortContext, '--prompt', 'a prompt of more than sixteen bytes', '--max-new-tokens', '1'],
        2,
        /ERR_PROMPT: the prompt \(35 tokens\).*max_position_embeddings \(16\)/,
      ],
      [['--model', at('model')], 2, /exactly one of --prompt/],
    ];
    for (const [args, code, message] of cases) {
      const run = await runCli(['generate', ...args]);
      expect(run.code, args.join(' ')).toBe(code);
      expect(run.stderr).toMatch(message);
    }
  });

  describe('on worker processes', () => {
    const base = ['generate', '--model', at('model'), '--prompt-tokens', at('prompt.json'), '--max-new-tokens', '4', '--greedy', '--json'];
    afterEach(killStarted);

    /** The in-process run every worker-process run must reproduce: tokens, and logits within 1e-4 of their scale. */
    async function expectSameAsInproc(run: CliResult, logitsFile: string): Promise<void> {
      expect(run.code, run.stderr).toBe(0);
      const inproc = await runCli([...base, '--strategy', 'zigzag', '--workers', '2', '--dump-logits', at('inproc.npy')]);
      expect(JSON.parse(run.stdout).tokens).toEqual(JSON.parse(inproc.stdout).tokens);
      const [expected, got] = await Promise.all([readFloat32NpyFile(at('inproc.npy')), readFloat32NpyFile(logitsFile)]);
      const scale = Math.max(...Array.from(expected.data, Math.abs));
      expect(Math.max(...Array.from(got.data, (x, i) => Math.abs(x - expected.data[i]!))) / scale).toBeLessThanOrEqual(1e-4);
    }

    it('--transport shm and ws run one rank per worker process, with the in-process tokens and logits', async () => {
      for (const [transport, strategy] of [
        ['shm', 'zigzag'],
        ['ws', 'striped'],
      ]) {
        const run = await runCli([...base, '--transport', transport!, '--strategy', strategy!, '--workers', '2', '--dump-logits', at(`${transport}.npy`)]);
        expect(JSON.parse(run.stdout || '{}')).toMatchObject({ strategy, workers: 2, transport });
        await expectSameAsInproc(run, at(`${transport}.npy`));
      }
    });

    it('--strategy auto picks the strategy and degree from the model shape and prompt length', async () => {
      const run = await runCli([...base, '--strategy', 'auto', '--workers', '2', '--transport', 'ws']);
      expect(run.code, run.stderr).toBe(0);
      const summary = JSON.parse(run.stdout);
      expect(summary.plan).toMatchObject({ strategy: expect.any(String), degree: expect.any(Number) });
      expect(run.stderr).toMatch(/auto: \S+ on \d worker\(s\)/);
      expect(summary.tokens).toHaveLength(4);
    });

    it('--coordinator runs on two `seqpar worker` processes that are already up, with the same tokens', async () => {
      writeFileSync(at('token'), 'generate-secret\n');
      const { clientAddress } = await startCluster(at('token'));
      const run = await runCli([...base, '--strategy', 'ring', '--coordinator', clientAddress, '--token-file', at('token'), '--dump-logits', at('remote.npy')]);
      expect(JSON.parse(run.stdout || '{}')).toMatchObject({ strategy: 'ring', workers: 2, transport: 'ws' });
      await expectSameAsInproc(run, at('remote.npy'));
      const text = await runCli([
        'generate',
        '--model',
        at('model'),
        '--prompt',
        'hello world',
        '--max-new-tokens',
        '3',
        '--coordinator',
        clientAddress,
        '--token-file',
        at('token'),
      ]);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stderr).toMatch(/prefill: \d+\/\d+ tokens · \d+ tok\/s/);
      expect(text.stderr).toMatch(/KV cache per rank: rank 0 [\d.]+ MiB, rank 1 [\d.]+ MiB/);
    });
  });
});
