import { basename, resolve } from 'node:path';
import { isSeqparError } from '@seqpar/core';
import { loadTokenizer, readModelConfig, type ModelConfig, type TextTokenizer } from '@seqpar/model';
import { badRequest } from './api-error.js';
import { loadChatTemplate, type ChatTemplate } from './chat-template.js';
import type { ChatMessage } from './protocol.js';

/** The model a server serves: its config, and the tokenizer and chat template where the directory has them. */
export class ServedModel {
  private constructor(
    /** Absolute path, the same on every worker's host. */
    readonly dir: string,
    /** What `/v1/models` lists and responses name. */
    readonly id: string,
    readonly config: ModelConfig,
    readonly tokenizer: TextTokenizer | undefined,
    private readonly chatTemplate: ChatTemplate | undefined,
  ) {}

  static async load(modelDir: string, id?: string): Promise<ServedModel> {
    const dir = resolve(modelDir);
    const config = await readModelConfig(dir);
    // Without tokenizer.json the server still takes token-id prompts, as vLLM's --skip-tokenizer-init does.
    const tokenizer = await loadTokenizer(dir).catch((error: unknown) => {
      if (isSeqparError(error) && error.code === 'ERR_FILE_NOT_FOUND') return undefined;
      throw error;
    });
    return new ServedModel(dir, id ?? basename(dir), config, tokenizer, await loadChatTemplate(dir));
  }

  /** Token ids of a prompt: ids pass through, text needs the tokenizer. */
  encode(prompt: string | readonly number[]): number[] {
    if (typeof prompt !== 'string') return [...prompt];
    if (!this.tokenizer) throw badRequest(`the model ${this.id} has no tokenizer.json, so this server takes prompts as arrays of token ids only`, 'no_tokenizer');
    return this.tokenizer.encode(prompt);
  }

  /** The chat prompt's token ids, rendered with the model's chat template. */
  encodeChat(messages: readonly ChatMessage[]): number[] {
    if (!this.chatTemplate) throw badRequest(`the model ${this.id} has no chat template (chat_template in tokenizer_config.json): use /v1/completions`, 'no_chat_template');
    let text: string;
    try {
      text = this.chatTemplate(messages);
    } catch (error) {
      throw badRequest(`the chat template of ${this.id} cannot render these messages: ${(error as Error).message}`, 'chat_template_error');
    }
    return this.encode(text);
  }
}
