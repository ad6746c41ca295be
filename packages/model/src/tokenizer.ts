import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { SeqparError } from '@seqpar/core';

/** Text <-> token ids through Hugging Face's tokenizer.json (tokenizers.js does the real work). */
export interface TextTokenizer {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
}

/** Loads `tokenizer.json` (and `tokenizer_config.json` when present) from a model directory. */
export async function loadTokenizer(dir: string): Promise<TextTokenizer> {
  const path = join(dir, 'tokenizer.json');
  if (!existsSync(path)) {
    throw new SeqparError('ERR_FILE_NOT_FOUND', `${dir} has no tokenizer.json: pass token ids with --prompt-tokens instead of text`);
  }
  const configPath = join(dir, 'tokenizer_config.json');
  try {
    const tokenizer = new Tokenizer(JSON.parse(await readFile(path, 'utf8')), existsSync(configPath) ? JSON.parse(await readFile(configPath, 'utf8')) : {});
    return {
      encode: (text) => tokenizer.encode(text).ids,
      decode: (ids) => tokenizer.decode([...ids], { skip_special_tokens: true }),
    };
  } catch (error) {
    throw new SeqparError('ERR_MODEL_FORMAT', `cannot load ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** GPT-2's byte-to-unicode table: printable stand-ins for the 256 byte values of a byte-level BPE. */
function byteLevelAlphabet(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : next++));
}

/**
 * A byte-level BPE tokenizer.json with no merges: ids 0-255 are bytes, then `<s>`, `</s>`, then fillers up to
 * `vocabSize`. Every text encodes (one token per byte) and decodes back exactly; tiny test models use it.
 */
export function byteLevelTokenizerJson(vocabSize: number): { tokenizer: object; bosId: number; eosId: number } {
  if (vocabSize < 258) throw new SeqparError('ERR_MODEL_CONFIG', `a byte-level tokenizer needs a vocabulary of at least 258, got ${vocabSize}`);
  const vocab: Record<string, number> = {};
  byteLevelAlphabet().forEach((symbol, id) => (vocab[symbol] = id));
  const [bosId, eosId] = [256, 257];
  vocab['<s>'] = bosId;
  vocab['</s>'] = eosId;
  for (let id = 258; id < vocabSize; id++) vocab[`<extra_${id}>`] = id;
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(bosId, '<s>'), special(eosId, '</s>')],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  };
  return { tokenizer, bosId, eosId };
}
