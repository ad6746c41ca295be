import { randomUUID } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import { ApiError, badRequest, toApiError } from './api-error.js';
import type { Engine, Generation } from './engine.js';
import type { FinishReason, SamplingParams, Usage } from './protocol.js';
import type { ServedModel } from './served-model.js';
import { EventStream } from './sse.js';
import { TextOutput } from './text-output.js';

/** A piece of a choice: the text and ids since the last piece, and the finish reason on the last one. */
export interface ChoicePiece {
  readonly text: string;
  readonly tokenIds?: number[];
  readonly finishReason: FinishReason | null;
}

/** Where the two endpoints differ: the shape of their bodies. */
export interface ResponseFormat {
  readonly idPrefix: string;
  /** One stream chunk; `first` is the first of its stream. */
  chunk(head: ResponseHead, piece: ChoicePiece, first: boolean): object;
  /** The stream's closing chunk when usage was asked for (`stream_options.include_usage`). */
  usageChunk(head: ResponseHead, usage: Usage): object;
  /** The whole answer of a request without `stream`. */
  whole(head: ResponseHead, piece: ChoicePiece, usage: Usage): object;
}

export interface ResponseHead {
  readonly id: string;
  readonly created: number;
  readonly model: string;
}

/**
 * Runs an admitted-or-refused generation and answers it: one JSON body, or a stream of SSE chunks. A refusal is
 * thrown before anything is written (the server's error handler answers it); a failure after the stream started
 * becomes an error event. The client going away cancels the request on the cluster.
 */
export async function respond(reply: FastifyReply, engine: Engine, model: ServedModel, prompt: number[], params: SamplingParams, format: ResponseFormat): Promise<void> {
  if (params.model !== undefined && params.model !== model.id)
    throw new ApiError(404, 'model_not_found', `the model '${params.model}' does not exist: this server serves '${model.id}'`);
  if (params.stop.length > 0 && !model.tokenizer) throw badRequest(`stop strings need the model's tokenizer.json, which ${model.id} lacks`, 'no_tokenizer');
  const gone = new AbortController();
  const generation = engine.admit(prompt, params, gone.signal);
  reply.raw.on('close', () => reply.raw.writableFinished || gone.abort());
  // Which sharding the planner picked for this prompt, for clients and tests that compare runs.
  reply.header('x-seqpar-strategy', generation.plan.strategy);
  const head: ResponseHead = { id: `${format.idPrefix}-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: model.id };
  const text = new TextOutput(model.tokenizer, params.stop);
  const ids = (tokens: number[]) => (params.returnTokenIds ? { tokenIds: tokens } : {});
  const eos = new Set(params.ignoreEos ? [] : model.config.eosTokenIds);
  const finish = (tokens: number[]): FinishReason => (text.stopped || eos.has(tokens[tokens.length - 1] ?? -1) ? 'stop' : 'length');
  const usage = (tokens: number[]): Usage => ({ prompt_tokens: prompt.length, completion_tokens: tokens.length, total_tokens: prompt.length + tokens.length });

  if (!params.stream) {
    let all = '';
    try {
      const tokens = await drain(generation, text, (_token, fresh) => (all += fresh));
      all += text.flush();
      return void reply.send(format.whole(head, { text: all, finishReason: finish(tokens), ...ids(tokens) }, usage(tokens)));
    } catch (error) {
      if (gone.signal.aborted)
        reply.hijack(); // the client is gone: nothing to answer
      else sendError(reply, error);
      return;
    }
  }

  reply.hijack();
  const stream = new EventStream(reply.raw, { 'x-seqpar-strategy': generation.plan.strategy });
  let first = true;
  try {
    const tokens = await drain(generation, text, (token, fresh) => {
      stream.send(format.chunk(head, { text: fresh, finishReason: null, ...ids([token]) }, first));
      first = false;
    });
    stream.send(format.chunk(head, { text: text.flush(), finishReason: finish(tokens), ...ids([]) }, first));
    if (params.includeUsage) stream.send(format.usageChunk(head, usage(tokens)));
  } catch (error) {
    stream.send(toApiError(error).toJSON());
  }
  stream.end();
}

/** Runs the generation to its end or its first stop string, handing each token and the text it made final to `onToken`. */
async function drain(generation: Generation, text: TextOutput, onToken: (token: number, fresh: string) => void): Promise<number[]> {
  const tokens: number[] = [];
  for await (const { token } of generation) {
    tokens.push(token);
    onToken(token, text.push(token));
    if (text.stopped) break; // leaving the loop cancels the rest on the cluster
  }
  return tokens;
}

function sendError(reply: FastifyReply, error: unknown): void {
  const failure = toApiError(error);
  void reply.code(failure.status).send(failure.toJSON());
}
