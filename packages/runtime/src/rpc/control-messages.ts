/**
 * The control channel between the coordinator and its workers. It rides the same transport world as the data
 * plane: workers are ranks 0..N-1 and the coordinator is rank N, so it inherits the transport's authentication,
 * framing and heartbeats. Two tags, each FIFO:
 *
 *   coordinator --DOWN--> worker : call  { id, op, args, degree, timeoutMs, traced, shapes, chunks }  + chunks on DOWN_DATA
 *                                  reset { }     (drop every request, close the world, join the next one)
 *                                  shutdown { }  (leave for good)
 *   worker ----UP-------> coordinator : partial { id, header }  (streamed before the result, e.g. a generated token)
 *                                       result { id, header, stats, spans?, shapes, chunks } + chunks on UP_DATA
 *                                       error  { id, code, message }
 */
export const DOWN_TAG = 'seqpar/down';
export const UP_TAG = 'seqpar/up';
/** A call's or result's tensors follow their control frame on these tags, in slot-sized chunks (tensor-payload.ts). */
export const DOWN_DATA_TAG = 'seqpar/down-data';
export const UP_DATA_TAG = 'seqpar/up-data';

export type DownMessage =
  | { kind: 'call'; id: number; op: string; args: Record<string, unknown>; degree: number; timeoutMs: number; traced: boolean; shapes: number[][]; chunks: number }
  | { kind: 'reset' }
  | { kind: 'shutdown' };

export type UpMessage =
  | { kind: 'partial'; id: number; header: Record<string, unknown> }
  | { kind: 'result'; id: number; header: Record<string, unknown>; stats: unknown; spans?: unknown; shapes: number[][]; chunks: number }
  | { kind: 'error'; id: number; code: string; message: string };

/** How long a control-loop receive waits before looping; the transport's heartbeats catch dead peers sooner. */
export const CONTROL_POLL_MS = 60_000;
