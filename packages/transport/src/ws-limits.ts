import { SeqparError } from '@seqpar/core';
import type { WebSocket } from 'ws';

/**
 * The largest message a socket reads before its peer has authenticated: enough for a handshake message, so an
 * unauthenticated peer cannot make this process buffer more. ws checks the limit against each frame header,
 * before it buffers the payload, and drops the socket with close code 1009 (WS_ERR_UNSUPPORTED_MESSAGE_LENGTH).
 */
export const PRE_AUTH_MAX_PAYLOAD = 1024;

/**
 * Raise a socket's message limit once its peer authenticated. ws fixes `maxPayload` when a socket opens and has
 * no public way to change it (websockets/ws#1473 proposed one and was closed), so this sets the limit its
 * receiver checks; the security tests (a large frame after the handshake passes, one before it does not) catch
 * a ws release that moves it.
 */
export function allowMessagesUpTo(ws: WebSocket, maxPayload: number): void {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  if (typeof receiver?._maxPayload !== 'number') {
    throw new SeqparError('ERR_INTERNAL', 'this version of ws keeps its message size limit elsewhere: cannot raise it after authentication');
  }
  receiver._maxPayload = maxPayload;
}
