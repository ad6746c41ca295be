import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { postJson, tinyModels } from './fixtures.js';

const models = tinyModels();
const seqpar = join(import.meta.dirname, '..', '..', '..', 'apps', 'cli', 'bin', 'seqpar.js');

describe('seqpar serve (the built CLI)', () => {
  afterAll(() => models.cleanup());

  it('listens on 127.0.0.1, prints its URL with --json, requires the key from --api-key-file, and exits 0 on SIGTERM', async () => {
    const dir = await models.make('cli-model');
    const keyFile = join(models.root, 'key');
    writeFileSync(keyFile, 'open-sesame\n');
    const child = spawn(process.execPath, [seqpar, 'serve', '--model', dir, '--listen', '0', '--workers', '1', '--api-key-file', keyFile, '--json'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      const { url } = JSON.parse(line) as { url: string };
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await postJson(`${url}/v1/completions`, { prompt: 'hi', max_tokens: 2 })).status).toBe(401);
      const answer = await postJson(`${url}/v1/completions`, { model: 'cli-model', prompt: 'hi', max_tokens: 2, temperature: 0 }, { authorization: 'Bearer open-sesame' });
      expect(answer).toMatchObject({ status: 200, body: { object: 'text_completion', model: 'cli-model', usage: { prompt_tokens: 2, completion_tokens: expect.any(Number) } } });
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });
  it('refuses a prefill chunk off the 64-row grid with exit 2 before starting anything', async () => {
    const dir = await models.make('chunk-model');
    const child = spawn(process.execPath, [seqpar, 'serve', '--model', dir, '--listen', '0', '--prefill-chunk', '1000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(2);
    expect(stderr).toContain('--prefill-chunk must be a positive multiple of 64 query rows, got 1000 (try 960 or 1024)');
  });
});
