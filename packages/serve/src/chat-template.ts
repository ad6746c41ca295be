import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { SeqparError } from '@seqpar/core';
import type { ChatMessage } from './protocol.js';

/** Renders chat messages into the prompt text the model was trained on. */
export type ChatTemplate = (messages: readonly ChatMessage[]) => string;

type TokenizerConfig = Record<string, unknown>;

/**
 * The model's chat template from tokenizer_config.json (`chat_template`: one Jinja string, or a list of named ones
 * of which `default` is used), rendered by @huggingface/jinja with the variables Hugging Face's
 * `apply_chat_template` passes. Undefined when the model has none.
 */
export async function loadChatTemplate(modelDir: string): Promise<ChatTemplate | undefined> {
  const path = join(modelDir, 'tokenizer_config.json');
  if (!existsSync(path)) return undefined;
  let config: TokenizerConfig;
  try {
    config = JSON.parse(await readFile(path, 'utf8')) as TokenizerConfig;
  } catch (error) {
    throw new SeqparError('ERR_MODEL_FORMAT', `${path} is not valid JSON`, { cause: error });
  }
  const source = templateSource(config['chat_template']);
  if (source === undefined) return undefined;
  let template: Template;
  try {
    template = new Template(source);
  } catch (error) {
    throw new SeqparError('ERR_MODEL_FORMAT', `the chat template in ${path} does not parse: ${(error as Error).message}`, { cause: error });
  }
  const specials = { bos_token: tokenText(config['bos_token']), eos_token: tokenText(config['eos_token']) };
  return (messages) => template.render({ messages: messages.map((m) => ({ ...m })), add_generation_prompt: true, ...specials });
}

function templateSource(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (!Array.isArray(value)) return undefined;
  const named = value as Array<{ name?: unknown; template?: unknown }>;
  const chosen = named.find((entry) => entry.name === 'default') ?? named[0];
  return typeof chosen?.template === 'string' ? chosen.template : undefined;
}

/** A special token as tokenizer_config.json writes it: a string or an AddedToken object with `content`. */
function tokenText(value: unknown): string {
  if (typeof value === 'string') return value;
  const content = (value as { content?: unknown } | null)?.content;
  return typeof content === 'string' ? content : '';
}
