import type { FastifyInstance } from 'fastify';
import type { ChatBody, ChatChunkBody } from '../protocol.js';
import { respond, type ChoicePiece, type ResponseFormat } from '../respond.js';
import type { ServeContext } from '../serve-context.js';
import { checkChatRequest } from '../validate-request.js';

const ids = (piece: ChoicePiece) => (piece.tokenIds ? { token_ids: piece.tokenIds } : {});

/** `chat.completion` bodies, and `chat.completion.chunk` deltas whose first one names the assistant's role. */
const format: ResponseFormat = {
  idPrefix: 'chatcmpl',
  chunk: (head, piece, first): ChatChunkBody => ({
    ...head,
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta: { ...(first ? { role: 'assistant' } : {}), content: piece.text }, logprobs: null, finish_reason: piece.finishReason, ...ids(piece) }],
  }),
  usageChunk: (head, usage): ChatChunkBody => ({ ...head, object: 'chat.completion.chunk', choices: [], usage }),
  whole: (head, piece, usage): ChatBody => ({
    ...head,
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content: piece.text }, logprobs: null, finish_reason: piece.finishReason, ...ids(piece) }],
    usage,
  }),
};

/** `POST /v1/chat/completions`: messages rendered with the model's chat template. */
export function chatCompletionsRoute(app: FastifyInstance, { engine, model }: ServeContext): void {
  app.post('/v1/chat/completions', async (request, reply) => {
    const params = checkChatRequest(request.body);
    await respond(reply, engine, model, model.encodeChat(params.messages), params, format);
  });
}
