import { mod } from '@seqpar/core';
import { discardFrame, withFrame } from '@seqpar/transport';
import { fetchFrame, floatsOf, headerNumber, postFrame, waitComm } from './frames.js';
import type { RankContext } from './rank-context.js';

/** What travels round a ring one hop per step (KV blocks for pass-KV, query sets for TokenRing), and how. */
export interface Relay<T> {
  /** Held tensors go to rank r + direction and arrive from r - direction. */
  readonly direction: 1 | -1;
  readonly tag: string;
  /** The rows and floats that carry `held` (no copy: a view of what the rank holds). */
  pack(held: T): { rows: number; values: Float32Array };
  /** What a received payload stands for; it is a view that lives for one step. */
  unpack(values: Float32Array, rows: number): T;
  /**
   * Whether the rank holding `origin`'s tensor at `step` computes with it (default: always). A tensor that no rank
   * further round the ring uses is not sent on; every rank evaluates the same rule, so no receive waits for it.
   */
  readonly used?: (origin: number, step: number) => boolean;
}

/**
 * Runs the N steps of a ring in which what a rank holds moves one hop per step: at step 0 it holds `own`, at step
 * t what its neighbour held at step t-1. Each step forwards the tensor in hand (not on the last step) while
 * `compute` works on it, and the next one is received meanwhile. A received tensor is a view of the sender's shm
 * slot, so it lives for exactly its step: released once computed on and once its forward's send has copied it out,
 * also when the step fails. Steps whose tensor nobody sent (`used`) compute nothing.
 */
export async function relayRing<T>(ctx: RankContext, relay: Relay<T>, own: T, compute: (step: number, held: T) => Promise<void>): Promise<void> {
  const { rank, worldSize: n } = ctx;
  const [to, from] = [mod(rank + relay.direction, n), mod(rank - relay.direction, n)];
  const used = relay.used ?? (() => true);
  const originAt = (t: number): number => mod(rank - relay.direction * t, n);
  /** Whether `origin`'s tensor is used at step `from` or later (by whichever rank holds it then). */
  const usedFrom = (origin: number, from: number): boolean => {
    for (let u = from; u < n; u++) if (used(origin, u)) return true;
    return false;
  };

  const step = async (t: number, held: T): Promise<void> => {
    const forwarded = t < n - 1 && usedFrom(originAt(t), t + 1) ? forward(t, held) : undefined;
    try {
      await compute(t, held);
    } finally {
      if (forwarded) await waitComm(ctx, `${relay.tag}/${t} sent`, forwarded);
    }
  };
  const forward = (t: number, held: T): Promise<void> => {
    const { rows, values } = relay.pack(held);
    return postFrame(ctx, to, `${relay.tag}/${t}`, { rows }, values);
  };
  // What arrives for step t + 1 is what the upstream rank forwarded at step t, by the same rule.
  const receive = (t: number) => (t < n - 1 && usedFrom(originAt(t + 1), t + 1) ? fetchFrame(ctx, from, `${relay.tag}/${t}`) : undefined);

  let next = receive(0);
  try {
    await step(0, own);
    for (let t = 1; t < n; t++) {
      const arriving = next;
      next = receive(t);
      if (arriving) {
        await withFrame(waitComm(ctx, `${relay.tag}/${t - 1}`, arriving), (frame) => step(t, relay.unpack(floatsOf(frame.payload), headerNumber(frame, 'rows'))));
      }
    }
  } catch (error) {
    if (next) discardFrame(next);
    throw error;
  }
}
