import { badRequest } from './api-error.js';
import type { ChatMessage, ChatParams, CompletionParams, SamplingParams } from './protocol.js';

type Body = Record<string, unknown>;

/** OpenAI's default `max_tokens` for completions; chat uses it too, so a request without one stays short. */
export const DEFAULT_MAX_TOKENS = 16;

/** Checks a `POST /v1/completions` body; every refusal is a 400 naming the field and what it must be. */
export function checkCompletionRequest(raw: unknown): CompletionParams {
  const body = asBody(raw);
  return { ...samplingParams(body), prompt: promptOf(body['prompt']) };
}

/** Checks a `POST /v1/chat/completions` body. */
export function checkChatRequest(raw: unknown): ChatParams {
  const body = asBody(raw);
  const messages = body['messages'];
  if (!Array.isArray(messages) || messages.length === 0) throw badRequest('messages must be a non-empty array of {role, content}');
  return { ...samplingParams(body, optionalInt(body, 'max_completion_tokens')), messages: messages.map(messageOf) };
}

function asBody(raw: unknown): Body {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw badRequest('the request body must be a JSON object');
  return raw as Body;
}

function samplingParams(body: Body, maxCompletionTokens?: number): SamplingParams {
  const maxTokens = optionalInt(body, 'max_tokens') ?? maxCompletionTokens ?? DEFAULT_MAX_TOKENS;
  if (maxTokens < 1) throw badRequest(`max_tokens must be at least 1, got ${maxTokens}`);
  const temperature = optionalNumber(body, 'temperature') ?? 1;
  if (temperature < 0) throw badRequest(`temperature must be >= 0 (0 is greedy), got ${temperature}`);
  const topP = optionalNumber(body, 'top_p') ?? 1;
  if (!(topP > 0 && topP <= 1)) throw badRequest(`top_p must be in (0, 1], got ${topP}`);
  const n = optionalInt(body, 'n') ?? 1;
  if (n !== 1) throw badRequest(`n must be 1: this server returns one choice per request, got ${n}`);
  for (const field of ['echo', 'logprobs'] as const) if (body[field] !== undefined && body[field] !== null && body[field] !== false) throw badRequest(`${field} is not supported`);
  const seed = optionalInt(body, 'seed');
  const model = optional(body, 'model', 'a string', (v): v is string => typeof v === 'string');
  const streamOptions = optional(body, 'stream_options', 'an object', (v): v is Body => typeof v === 'object' && !Array.isArray(v));
  return {
    maxTokens,
    temperature,
    topP,
    stop: stopOf(body['stop']),
    stream: optionalBoolean(body, 'stream') ?? false,
    includeUsage: optionalBoolean(streamOptions ?? {}, 'include_usage') ?? false,
    returnTokenIds: optionalBoolean(body, 'return_token_ids') ?? false,
    ignoreEos: optionalBoolean(body, 'ignore_eos') ?? false,
    ...(seed === undefined ? {} : { seed }),
    ...(model === undefined ? {} : { model }),
  };
}

/** A text, token ids, or a list holding exactly one of those (the OpenAI client's batch form). */
function promptOf(prompt: unknown): string | number[] {
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt) && prompt.length === 1 && (typeof prompt[0] === 'string' || Array.isArray(prompt[0]))) return promptOf(prompt[0]);
  if (Array.isArray(prompt) && prompt.length > 0 && prompt.every((id) => Number.isInteger(id) && id >= 0)) return prompt as number[];
  if (Array.isArray(prompt) && prompt.length > 1 && prompt.every((p) => typeof p === 'string' || Array.isArray(p)))
    throw badRequest('one prompt per request: send the others separately');
  throw badRequest('prompt must be a non-empty string or a non-empty array of token ids (non-negative integers)');
}

function messageOf(message: unknown, index: number): ChatMessage {
  const m = message as Body;
  if (typeof m !== 'object' || m === null || typeof m['role'] !== 'string') throw badRequest(`messages[${index}] must be an object with a string role`);
  const content = m['content'];
  if (typeof content === 'string') return { role: m['role'], content };
  if (content === null || content === undefined) return { role: m['role'], content: '' };
  // The content-part form: only text parts can be rendered by a text model.
  if (Array.isArray(content) && content.every((part) => (part as Body)?.['type'] === 'text' && typeof (part as Body)['text'] === 'string'))
    return { role: m['role'], content: content.map((part) => (part as Body)['text'] as string).join('') };
  throw badRequest(`messages[${index}].content must be a string or a list of text parts`);
}

function stopOf(stop: unknown): string[] {
  if (stop === undefined || stop === null) return [];
  if (typeof stop === 'string') return stop ? [stop] : [];
  if (Array.isArray(stop) && stop.every((s) => typeof s === 'string' && s.length > 0)) return stop as string[];
  throw badRequest('stop must be a string or an array of non-empty strings');
}

/** A field that may be absent or null; present, it must pass `is`. */
function optional<T>(body: Body, field: string, what: string, is: (value: unknown) => value is T): T | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (!is(value)) throw badRequest(`${field} must be ${what}, got ${JSON.stringify(value)}`);
  return value;
}

const optionalInt = (body: Body, field: string) => optional(body, field, 'an integer', (v): v is number => Number.isInteger(v));
const optionalNumber = (body: Body, field: string) => optional(body, field, 'a number', (v): v is number => typeof v === 'number' && Number.isFinite(v));
const optionalBoolean = (body: Body, field: string) => optional(body, field, 'true or false', (v): v is boolean => typeof v === 'boolean');
