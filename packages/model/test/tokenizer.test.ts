import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { byteLevelTokenizerJson, loadTokenizer } from '../src/tokenizer.js';

describe('byte-level tokenizer.json through tokenizers.js', () => {
  it('encodes one token per byte and decodes back exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'seqpar-tok-'));
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(byteLevelTokenizerJson(300).tokenizer));
    const tokenizer = await loadTokenizer(dir);
    const text = 'Long context, naïve café!\n\tend';
    const ids = tokenizer.encode(text);
    expect(ids).toEqual([...Buffer.from(text, 'utf8')]);
    expect(tokenizer.decode(ids)).toBe(text);
  });

  it('says how to go on when a model has no tokenizer.json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'seqpar-tok-'));
    await expect(loadTokenizer(dir)).rejects.toMatchObject({ code: 'ERR_FILE_NOT_FOUND', message: expect.stringMatching(/--prompt-tokens/) });
  });
});
