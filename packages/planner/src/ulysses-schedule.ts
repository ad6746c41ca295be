import { floatPartialBytes } from './pass-kv-schedule.js';
import { ScheduleBuilder, type Schedule } from './schedule.js';
import { wholeRequestWork, type ShardWork } from './shard-work.js';
import { kvBytes, partialBytes, qBytes, requestBytes, type AttentionWorkload } from './workload.js';

/** Why Ulysses cannot run `degree` ways on these heads, or undefined when it can. */
export function ulyssesRefusal(w: AttentionWorkload, degree: number): string | undefined {
  if (degree > w.kvHeads) return `degree ${degree} exceeds the ${w.kvHeads} kv heads`;
  if (w.kvHeads % degree !== 0 || w.heads % degree !== 0) return `degree ${degree} does not divide the heads (${w.heads} q, ${w.kvHeads} kv)`;
  return undefined;
}

/**
 * DeepSpeed-Ulysses: step 0 sends every rank its heads of this rank's tokens (all-to-all), step 1 runs full
 * attention over the whole sequence for 1/N of the heads and sends each token owner its out and lse (all-to-all),
 * step 2 places the results that came back.
 */
export function ulyssesSchedule(shards: ShardWork, w: AttentionWorkload, n: number): Schedule {
  const b = new ScheduleBuilder(n);
  const headShare = { ...w, heads: w.heads / n, kvHeads: w.kvHeads / n };
  const others = (r: number): number[] => Array.from({ length: n }, (_, p) => p).filter((p) => p !== r);
  const scatter = Array.from(
    { length: n },
    (_, r) => new Map(others(r).map((p) => [p, b.message(r, p, qBytes(shards.queryRows(r), headShare) + kvBytes(shards.kvRows(r), headShare), `heads of ${p}`)])),
  );
  const gather = Array.from({ length: n }, (_, r) => new Map(others(r).map((p) => [p, b.message(r, p, partialBytes(shards.queryRows(p), headShare), `results for ${p}`)])));
  const attend = wholeRequestWork(headShare); // the same on every rank: computed once
  for (let r = 0; r < n; r++) {
    const own = qBytes(shards.queryRows(r), w) + kvBytes(shards.kvRows(r), w);
    // Heads sliced out of the shard, packed into frames, then placed into the whole-sequence tensors: three copies.
    b.step(r, { label: 'all-to-all heads', copyBytes: 3 * own, sendsAtStart: [...scatter[r]!.values()] });
    b.step(r, {
      label: 'attend own heads',
      ...attend,
      needs: others(r).map((p) => scatter[p]!.get(r)!),
      sendsAtEnd: [...gather[r]!.values()],
    });
    // Results packed per token owner, then placed into the owner's heads: two copies.
    b.step(r, { label: 'all-to-all results', copyBytes: 2 * partialBytes(shards.queryRows(r), w), needs: others(r).map((p) => gather[p]!.get(r)!) });
  }
  const rows = shards.queryRows(0);
  const keys = w.seq + w.prefix;
  // Own shard, the whole sequence for 1/N of the heads, its float32 result, and this rank's gathered result.
  const peakMemoryBytes =
    qBytes(rows, w) + kvBytes(shards.kvRows(0), w) + qBytes(w.seq, headShare) + kvBytes(keys, headShare) + floatPartialBytes(w.seq, headShare) + floatPartialBytes(rows, w);
  return b.build({ strategy: 'ulysses', layout: 'contiguous', pass: 'none', peakMemoryBytes, requestBytes: requestBytes(w) });
}
