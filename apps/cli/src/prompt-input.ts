import { readFile } from 'node:fs/promises';
import { SeqparError, UsageError } from '@seqpar/core';
import { loadTokenizer, type TextTokenizer } from '@seqpar/model';

export interface PromptOptions {
  readonly prompt?: string;
  readonly promptFile?: string;
  readonly promptTokens?: string;
}

/** The prompt as token ids, from exactly one of --prompt, --prompt-file (text, tokenized) or --prompt-tokens. */
export async function readPrompt(modelDir: string, options: PromptOptions): Promise<{ ids: number[]; tokenizer?: TextTokenizer }> {
  const given = [options.prompt, options.promptFile, options.promptTokens].filter((value) => value !== undefined);
  if (given.length !== 1) throw new UsageError('give exactly one of --prompt, --prompt-file or --prompt-tokens');
  if (options.promptTokens !== undefined) return { ids: await readTokenFile(options.promptTokens), ...(await optionalTokenizer(modelDir)) };
  const text = options.prompt ?? (await readText(options.promptFile!));
  const tokenizer = await loadTokenizer(modelDir);
  return { ids: tokenizer.encode(text), tokenizer };
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read --prompt-file ${path}: ${(error as Error).message}`, 'ERR_FILE_NOT_FOUND');
  }
}

async function readTokenFile(path: string): Promise<number[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new UsageError(missing ? `no such file: ${path}` : `${path} is not JSON: ${(error as Error).message}`, missing ? 'ERR_FILE_NOT_FOUND' : 'ERR_PROMPT');
  }
  if (!Array.isArray(parsed) || parsed.some((id) => !Number.isInteger(id))) throw new UsageError(`${path} must hold a JSON array of integer token ids`, 'ERR_PROMPT');
  return parsed as number[];
}

/** Token-id prompts still decode the output as text when the model ships a tokenizer. */
async function optionalTokenizer(modelDir: string): Promise<{ tokenizer?: TextTokenizer }> {
  try {
    return { tokenizer: await loadTokenizer(modelDir) };
  } catch (error) {
    if (error instanceof SeqparError && error.code === 'ERR_FILE_NOT_FOUND') return {};
    throw error;
  }
}
