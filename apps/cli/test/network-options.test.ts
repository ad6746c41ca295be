import { describe, expect, it } from 'vitest';
import { collectFault, collectLink } from '../src/network-options.js';
import { runCli } from './run-cli.js';

describe('--link and --fault parsing', () => {
  it('builds a link spec: defaults from a plain --link, one direction from FROM-TO:', () => {
    let spec = collectLink('latency=2ms,bandwidth=100M,jitter=0.5', undefined);
    spec = collectLink('1-0:latency=9,bandwidth=1.5GB/s', spec);
    expect(spec).toEqual({ latencyMs: 2, bytesPerSecond: 100e6, jitterMs: 0.5, links: [{ from: 1, to: 0, latencyMs: 9, bytesPerSecond: 1.5e9 }] });
  });

  it('builds a fault list', () => {
    const faults = ['kill:1@3', 'stall:0@1:250', 'corrupt:2@1', 'partition:0-1@2'].reduce(
      (list: ReturnType<typeof collectFault> | undefined, text) => collectFault(text, list),
      undefined,
    );
    expect(faults).toEqual([
      { kind: 'kill', rank: 1, at: 3 },
      { kind: 'stall', rank: 0, at: 1, ms: 250 },
      { kind: 'corrupt', rank: 2, at: 1 },
      { kind: 'partition', ranks: [0, 1], at: 2 },
    ]);
  });

  it.each(['latency=-1', 'speed=3', 'bandwidth=fast'])('refuses --link %s', (text) => {
    expect(() => collectLink(text, undefined)).toThrow();
  });

  it.each(['explode:1@1', 'stall:1@1', 'drop:1@1:5', 'kill:1'])('refuses --fault %s', (text) => {
    expect(() => collectFault(text)).toThrow();
  });
});

describe('seqpar attention with --link / --fault', () => {
  const base = ['attention', '--random', '--seq', '40', '--heads', '4', '--kv-heads', '2', '--head-dim', '16', '--workers', '2', '--strategy', 'ring', '--json'];

  it('runs over shaped links and reports the added latency in wallMs', async () => {
    const run = await runCli([...base, '--link', 'latency=30,bandwidth=100M']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).wallMs).toBeGreaterThanOrEqual(30);
  });

  it('fails a corrupted frame with exit 1 and ERR_CORRUPT_FRAME, and a malformed fault with exit 2', async () => {
    const corrupt = await runCli([...base, '--fault', 'corrupt:0@1'], { env: { SEQPAR_LOG_LEVEL: 'silent' } });
    expect(corrupt.code).toBe(1);
    expect(corrupt.stdout).toBe('');
    expect(corrupt.stderr).toMatch(/ERR_CORRUPT_FRAME: rank 1: frame '\S+' #0 from rank 0 is corrupt/);
    const malformed = await runCli([...base, '--fault', 'drop:9@1']);
    expect(malformed.code).toBe(2);
  });
});
