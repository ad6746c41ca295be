import { mod, type LayoutKind, type StrategyName } from '@seqpar/core';
import { ScheduleBuilder, type Schedule } from './schedule.js';
import { workOfStep, type ShardWork } from './shard-work.js';
import { kvBytes, partialBytes, qBytes, requestBytes, type AttentionWorkload } from './workload.js';

/**
 * Ring, striped and zigzag (ring-flash-attention's forward loop): at step t rank r computes its queries against
 * the KV of source (r - t) mod N while forwarding that KV to r + 1 for the next step; the last step sends nothing.
 * Every KV shard travels whole, even when the block plan uses part of it (zigzag's s < r) or none (ring's s > r).
 */
export function passKvSchedule(strategy: StrategyName, layout: LayoutKind, shards: ShardWork, w: AttentionWorkload, n: number): Schedule {
  const b = new ScheduleBuilder(n);
  // hops[r][t]: the message rank r sends at step t, received by r + 1 for its step t + 1.
  const hops = Array.from({ length: n }, (_, r) =>
    Array.from({ length: n - 1 }, (_, t) => b.message(r, mod(r + 1, n), kvBytes(shards.kvRows(mod(r - t, n)), w), `kv of ${mod(r - t, n)}`)),
  );
  for (let r = 0; r < n; r++) {
    for (let t = 0; t < n; t++) {
      const source = mod(r - t, n);
      const work = shards.work(r, source);
      b.step(r, {
        label: `kv of ${source}`,
        // No packing: a rank's K and V arrive back to back in its request payload and already are the frame, and
        // later steps forward what they received.
        ...workOfStep(work, w),
        needs: t === 0 ? [] : [hops[mod(r - 1, n)]![t - 1]!],
        sendsAtStart: t < n - 1 ? [hops[r]![t]!] : [],
      });
    }
  }
  const rows = Math.max(...Array.from({ length: n }, (_, r) => shards.queryRows(r)));
  const kvRows = Math.max(...Array.from({ length: n }, (_, r) => shards.kvRows(r)));
  // q, own KV, two KV buffers in flight, and the float32 accumulator plus one block result.
  const peakMemoryBytes = qBytes(rows, w) + 3 * kvBytes(kvRows, w) + 2 * floatPartialBytes(rows, w);
  return b.build({ strategy, layout, pass: 'pass-kv', peakMemoryBytes, requestBytes: requestBytes(w) });
}

/** out and lse of `rows` queries in float32, as accumulators are kept. */
export const floatPartialBytes = (rows: number, w: AttentionWorkload): number => partialBytes(rows, { ...w, bytesPerElement: 4 });
