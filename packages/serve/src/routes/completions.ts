import type { FastifyInstance } from 'fastify';
import type { CompletionBody, CompletionChoice } from '../protocol.js';
import { respond, type ChoicePiece, type ResponseFormat } from '../respond.js';
import type { ServeContext } from '../serve-context.js';
import { checkCompletionRequest } from '../validate-request.js';

const choice = (piece: ChoicePiece): CompletionChoice => ({
  index: 0,
  text: piece.text,
  logprobs: null,
  finish_reason: piece.finishReason,
  ...(piece.tokenIds ? { token_ids: piece.tokenIds } : {}),
});

/** `text_completion` bodies; a stream's chunks have the same shape as the whole answer. */
const format: ResponseFormat = {
  idPrefix: 'cmpl',
  chunk: (head, piece): CompletionBody => ({ ...head, object: 'text_completion', choices: [choice(piece)] }),
  usageChunk: (head, usage): CompletionBody => ({ ...head, object: 'text_completion', choices: [], usage }),
  whole: (head, piece, usage): CompletionBody => ({ ...head, object: 'text_completion', choices: [choice(piece)], usage }),
};

/** `POST /v1/completions`: a text or token-id prompt. */
export function completionsRoute(app: FastifyInstance, { engine, model }: ServeContext): void {
  app.post('/v1/completions', async (request, reply) => {
    const params = checkCompletionRequest(request.body);
    await respond(reply, engine, model, model.encode(params.prompt), params, format);
  });
}
