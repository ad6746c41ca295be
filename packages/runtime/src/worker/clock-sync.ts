import { epochNow, SeqparError } from '@seqpar/core';
import type { Transport } from '@seqpar/transport';
import { CONTROL_POLL_MS } from '../rpc/rpc-messages.js';

/**
 * NTP-style clock comparison between the coordinator and one worker, on a tag of its own beside the control
 * channel (so a ping never waits behind a request's tensors in the control queue):
 *
 *   coordinator                          worker r
 *   t0 = now() ---- ping { seq } ------> t1 = now()
 *                                        t2 = now()
 *   t3 = now() <--- pong { seq, t1, t2 } -
 *
 * Write a worker's clock as the coordinator's plus delta. A frame arrives after it leaves, so every exchange
 * bounds delta to [t2 - t3, t1 - t0] whatever the delays on the path (the bracket is as wide as the round trip
 * minus the worker's turnaround). Intersecting a few exchanges gives the bracket that clock alignment
 * (align-clocks.ts) works within; its midpoint is the classic NTP estimate of the tightest exchange.
 */
export const CLOCK_TAG = 'seqpar/clock';

/** Bounds on a worker's clock minus the coordinator's, in ms. */
export interface ClockBracket {
  readonly lowMs: number;
  readonly highMs: number;
}

interface Pong {
  readonly seq: number;
  readonly receivedMs: number;
  readonly sentMs: number;
}

/** Worker side: answers the coordinator's pings until the world closes (or `signal` aborts). */
export async function answerClockPings(world: Transport, coordinator: number, signal?: AbortSignal): Promise<void> {
  for (;;) {
    let seq: unknown;
    try {
      const frame = await world.recv(coordinator, CLOCK_TAG, { timeoutMs: CONTROL_POLL_MS, ...(signal ? { signal } : {}) });
      seq = frame.header.seq;
    } catch (error) {
      if ((error as SeqparError).code === 'ERR_TIMEOUT') continue;
      return; // the world is closing: the control loop reports what happened
    }
    const receivedMs = epochNow();
    const pong = { seq, receivedMs, sentMs: epochNow() };
    await world.send(coordinator, CLOCK_TAG, pong).catch(() => undefined);
  }
}

/**
 * Coordinator side: `rounds` exchanges with `rank`, one after another, each bounded by `timeoutMs`. `seq` numbers
 * must not repeat on one world: a pong left over from an exchange that timed out is skipped, not mistaken.
 */
export async function measureClock(world: Transport, rank: number, rounds: number, firstSeq: number, timeoutMs: number): Promise<ClockBracket> {
  let lowMs = -Infinity;
  let highMs = Infinity;
  for (let seq = firstSeq; seq < firstSeq + rounds; seq++) {
    const t0 = epochNow();
    await world.send(rank, CLOCK_TAG, { seq });
    const pong = await pongFor(world, rank, seq, t0 + timeoutMs);
    const t3 = epochNow();
    lowMs = Math.max(lowMs, pong.sentMs - t3);
    highMs = Math.min(highMs, pong.receivedMs - t0);
  }
  return { lowMs, highMs };
}

async function pongFor(world: Transport, rank: number, seq: number, deadlineMs: number): Promise<Pong> {
  for (;;) {
    const timeoutMs = Math.max(1, deadlineMs - epochNow());
    const header = (await world.recv(rank, CLOCK_TAG, { timeoutMs })).header as Partial<Pong>;
    if (typeof header.receivedMs !== 'number' || typeof header.sentMs !== 'number' || !Number.isFinite(header.receivedMs + header.sentMs)) {
      throw new SeqparError('ERR_BAD_FRAME', `rank ${rank} answered a clock ping without valid times`);
    }
    if (header.seq === seq) return header as Pong;
  }
}
