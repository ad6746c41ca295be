import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer, type TextTokenizer } from '@seqpar/model';
import { TextOutput } from '../src/text-output.js';
import { byteIds, tinyModels } from './fixtures.js';

const models = tinyModels();

describe('TextOutput', () => {
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    tokenizer = await loadTokenizer(await models.make('tok'));
  });
  afterAll(() => models.cleanup());

  const feed = (output: TextOutput, text: string) => byteIds(text).map((id) => output.push(id));

  it('hands out each character once it is whole (multi-byte UTF-8 arrives over several tokens)', () => {
    const output = new TextOutput(tokenizer, []);
    const pieces = feed(output, 'añ€b');
    expect(pieces).toEqual(['a', '', 'ñ', '', '', '€', 'b']);
    expect(output.flush()).toBe('');
  });

  it('holds back a tail that could start a stop string and ends the text before the stop string', () => {
    const output = new TextOutput(tokenizer, ['END', '\n\n']);
    const pieces = feed(output, 'one EN two ENDthree');
    expect(pieces.join('')).toBe('one EN two ');
    expect(output.stopped).toBe(true);
    expect(pieces.slice(0, 6)).toEqual(['o', 'n', 'e', ' ', '', '']); // "EN" waits: it may become "END"
  });

  it('gives back what it held once the generation ends without a stop string', () => {
    const output = new TextOutput(tokenizer, ['END']);
    expect(feed(output, 'tail EN').join('')).toBe('tail ');
    expect(output.flush()).toBe('EN');
  });

  it('stays empty without a tokenizer', () => {
    const output = new TextOutput(undefined, []);
    expect(feed(output, 'abc')).toEqual(['', '', '']);
  });
});
