/**
 * The OpenAI HTTP API as this server speaks it: the checked form of a request (validate-request.ts makes it from
 * the JSON body) and the bodies it answers with. Fields the engine cannot honour are refused, never ignored.
 */

/** What both endpoints ask of a generation. */
export interface SamplingParams {
  /** 16 when the request gives none (OpenAI's default for completions). */
  readonly maxTokens: number;
  /** 0 picks the most likely token. Default 1. */
  readonly temperature: number;
  readonly topP: number;
  readonly seed?: number;
  /** Strings that end the text (not included in it). */
  readonly stop: readonly string[];
  readonly stream: boolean;
  /** With `stream`: a last chunk carrying the usage. */
  readonly includeUsage: boolean;
  /** Each choice (and each stream chunk) carries the generated ids as `token_ids`. */
  readonly returnTokenIds: boolean;
  /** vLLM's extension: generate max_tokens tokens even past an end-of-sequence token (benchmarks). */
  readonly ignoreEos: boolean;
  readonly model?: string;
}

export interface CompletionParams extends SamplingParams {
  /** Text to tokenize, or token ids as given. */
  readonly prompt: string | readonly number[];
}

export interface ChatMessage {
  readonly role: string;
  readonly content: string;
}

export interface ChatParams extends SamplingParams {
  readonly messages: readonly ChatMessage[];
}

export type FinishReason = 'stop' | 'length';

export interface Usage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

export interface CompletionChoice {
  readonly index: number;
  readonly text: string;
  readonly logprobs: null;
  readonly finish_reason: FinishReason | null;
  readonly token_ids?: number[];
}

export interface CompletionBody {
  readonly id: string;
  readonly object: 'text_completion';
  readonly created: number;
  readonly model: string;
  readonly choices: CompletionChoice[];
  readonly usage?: Usage | null;
}

export interface ChatChoice {
  readonly index: number;
  readonly message: { readonly role: 'assistant'; readonly content: string };
  readonly logprobs: null;
  readonly finish_reason: FinishReason | null;
  readonly token_ids?: number[];
}

export interface ChatChunkChoice {
  readonly index: number;
  readonly delta: { readonly role?: 'assistant'; readonly content?: string };
  readonly logprobs: null;
  readonly finish_reason: FinishReason | null;
  readonly token_ids?: number[];
}

export interface ChatBody {
  readonly id: string;
  readonly object: 'chat.completion';
  readonly created: number;
  readonly model: string;
  readonly choices: ChatChoice[];
  readonly usage: Usage;
}

export interface ChatChunkBody {
  readonly id: string;
  readonly object: 'chat.completion.chunk';
  readonly created: number;
  readonly model: string;
  readonly choices: ChatChunkChoice[];
  readonly usage?: Usage | null;
}
