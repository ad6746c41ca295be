import { SeqparError, type ErrorCode } from '@seqpar/core';

/**
 * The one wire protocol of every request that crosses a process: coordinator -> worker and client ->
 * coordinator alike. The caller is one end of a transport world, the callee another; four tags, each FIFO:
 *
 *   caller --CALL-------> callee : call   { id, op, args, timeoutMs, shapes, chunks, tensorChunks }  + chunks on CALL_DATA
 *                                  cancel { id }                 (the caller gave up: drop the call)
 *                                  reset | shutdown              (coordinator -> worker: leave this world / for good)
 *   callee --REPLY------> caller : partial { id, header }        (streamed ahead of the result, in order)
 *                                  result  { id, header, stats?, spans?, shapes, chunks, tensorChunks }  + chunks on REPLY_DATA
 *                                  error   { id, code, message, exitCode }
 *
 * Tensors always travel as chunks of at most TENSOR_CHUNK_BYTES (tensor-payload.ts), so no request or reply is
 * bounded by a transport's frame cap. Each end sends one message and its chunks at a time (OrderedSender), so a
 * reader takes a message's chunks right after it. `tensorChunks` counts each tensor's chunks: a tensor that came as
 * one chunk may be read in the frame it arrived in.
 */
export const CALL_TAG = 'seqpar/call';
export const CALL_DATA_TAG = 'seqpar/call-data';
export const REPLY_TAG = 'seqpar/reply';
export const REPLY_DATA_TAG = 'seqpar/reply-data';

export type CallMessage =
  | { kind: 'call'; id: number; op: string; args: Record<string, unknown>; timeoutMs: number; shapes: number[][]; chunks: number; tensorChunks?: number[] }
  | { kind: 'cancel'; id: number }
  | { kind: 'reset' }
  | { kind: 'shutdown' };

export type ReplyMessage =
  | { kind: 'partial'; id: number; header: Record<string, unknown> }
  | { kind: 'result'; id: number; header: Record<string, unknown>; stats?: unknown; spans?: unknown; shapes: number[][]; chunks: number; tensorChunks?: number[] }
  | { kind: 'error'; id: number; code: string; message: string; exitCode: 1 | 2 };

/** How long a loop's receive waits before looping; the transport's heartbeats catch dead peers sooner. */
export const CONTROL_POLL_MS = 60_000;

export function errorMessage(id: number, error: unknown): ReplyMessage {
  const typed = error instanceof SeqparError ? error : new SeqparError('ERR_INTERNAL', error instanceof Error ? error.message : String(error));
  return { kind: 'error', id, code: typed.code, message: typed.message, exitCode: typed.exitCode };
}

/** The callee's error, rebuilt at the caller with the same code and exit code. */
export function errorFromMessage(reply: Extract<ReplyMessage, { kind: 'error' }>, from: string): SeqparError {
  return new SeqparError(reply.code as ErrorCode, `${from}: ${reply.message}`, { exitCode: reply.exitCode === 2 ? 2 : 1 });
}
