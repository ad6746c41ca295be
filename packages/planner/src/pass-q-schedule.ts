import { mod, type LayoutKind } from '@seqpar/core';
import { floatPartialBytes } from './pass-kv-schedule.js';
import { ScheduleBuilder, type Schedule } from './schedule.js';
import { workOfStep, type ShardWork } from './shard-work.js';
import { kvBytes, mergeBytes, partialBytes, qBytes, requestBytes, type AttentionWorkload } from './workload.js';

/**
 * TokenRing (pass-Q): KV stays; at step t rank r holds the queries of owner (r + t) mod N, forwards them to r - 1,
 * and sends the partial (out, lse) it computed for them straight back to the owner. A last step merges the
 * partials that came back. Queries flow one way and results the other, so both directions of the links work.
 */
export function passQSchedule(layout: LayoutKind, shards: ShardWork, w: AttentionWorkload, n: number): Schedule {
  const b = new ScheduleBuilder(n);
  // hops[r][t]: the queries rank r forwards at step t (owner r + t), received by r - 1 for its step t + 1.
  const hops = Array.from({ length: n }, (_, r) =>
    Array.from({ length: n - 1 }, (_, t) => b.message(r, mod(r - 1, n), qBytes(shards.queryRows(mod(r + t, n)), w), `q of ${mod(r + t, n)}`)),
  );
  const returned: number[][] = Array.from({ length: n }, () => []);
  for (let r = 0; r < n; r++) {
    for (let t = 0; t < n; t++) {
      const owner = mod(r + t, n);
      const work = shards.work(owner, r);
      const sendsBack = owner !== r && work.calls > 0;
      const result = sendsBack ? b.message(r, owner, partialBytes(shards.queryRows(owner), w), `partial for ${owner}`) : undefined;
      if (result !== undefined) returned[owner]!.push(result);
      b.step(r, {
        label: `q of ${owner}`,
        // Every call's result merges into the owner's accumulator or the partial sent back.
        ...workOfStep(work, w),
        needs: t === 0 ? [] : [hops[mod(r + 1, n)]![t - 1]!],
        sendsAtStart: t < n - 1 ? [hops[r]![t]!] : [],
        sendsAtEnd: result === undefined ? [] : [result],
        // A partial for another owner is packed into one frame.
        copyBytes: result === undefined ? 0 : partialBytes(shards.queryRows(owner), w),
      });
    }
  }
  for (let r = 0; r < n; r++) {
    b.step(r, { label: 'merge partials', mergeBytes: returned[r]!.length * mergeBytes(shards.queryRows(r), w), needs: returned[r]! });
  }
  const rows = Math.max(...Array.from({ length: n }, (_, r) => shards.queryRows(r)));
  const kvRows = Math.max(...Array.from({ length: n }, (_, r) => shards.kvRows(r)));
  // Own q plus two travelling q buffers, own KV, the accumulator, one partial being computed and one being sent.
  const peakMemoryBytes = 3 * qBytes(rows, w) + kvBytes(kvRows, w) + 3 * floatPartialBytes(rows, w);
  return b.build({ strategy: 'token-ring', layout, pass: 'pass-q', peakMemoryBytes, requestBytes: requestBytes(w) });
}
