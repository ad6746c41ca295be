import { mod } from '@seqpar/core';
import { floatPartialBytes } from './pass-kv-schedule.js';
import type { HardwareProfile } from './profiles.js';
import { ScheduleBuilder, type Schedule } from './schedule.js';
import { balancedShardWork, mergedRows, plannedShardWork } from './shard-work.js';
import { ulyssesRefusal } from './ulysses-schedule.js';
import { attentionFlops, blockBytes, kvBytes, mergeBytes, partialBytes, qBytes, requestBytes, type AttentionWorkload } from './workload.js';

/** Why USP cannot run with `ulyssesDegree` ranks per group on `degree` ranks, or undefined when it can. */
export function uspRefusal(w: AttentionWorkload, degree: number, ulyssesDegree: number): string | undefined {
  if (!Number.isInteger(ulyssesDegree) || ulyssesDegree < 1 || degree % ulyssesDegree !== 0) return `ulysses degree ${ulyssesDegree} does not divide the ${degree} ranks`;
  return ulyssesRefusal(w, ulyssesDegree);
}

/** Every ulysses degree USP can run with on `degree` ranks, ascending: U = 1 (the zigzag ring) up to the largest that divides the heads. */
export function uspDegrees(w: AttentionWorkload, degree: number): number[] {
  return Array.from({ length: degree }, (_, i) => i + 1).filter((u) => uspRefusal(w, degree, u) === undefined);
}

/** The largest feasible U whose groups fit one host of `profile` (when it has a topology): all-to-alls on the fast links. */
export function defaultUlyssesDegree(w: AttentionWorkload, degree: number, profile?: HardwareProfile): number {
  const perHost = profile?.topology?.devicesPerHost ?? degree;
  return Math.max(...uspDegrees(w, degree).filter((u) => u <= perHost));
}

/**
 * USP (strategies' usp.ts) on N = U x R ranks: an all-to-all among the U ranks of each group hands every member its
 * 1/U of the heads for the group's zigzag share; the R ranks holding the same heads run a zigzag ring over the
 * groups (KV of a group's share, 1/U of the kv heads, per hop); the results go home by a second all-to-all. Rank
 * g·U + m is member m of group g, so a group is U consecutive ranks (one host where U divides its devices).
 */
export function uspSchedule(w: AttentionWorkload, n: number, u: number): Schedule {
  const r = n / u;
  const b = new ScheduleBuilder(n);
  const heads = { ...w, heads: w.heads / u, kvHeads: w.kvHeads / u };
  const shards = w.prefix > 0 ? balancedShardWork(w, n) : plannedShardWork('zigzag', w, n);
  const ring = w.prefix > 0 ? balancedShardWork(heads, r) : plannedShardWork('zigzag', heads, r);
  const at = (group: number, member: number): number => group * u + member;
  const [groupOf, memberOf] = [(rank: number) => Math.floor(rank / u), (rank: number) => rank % u];
  const peers = (rank: number): number[] => Array.from({ length: u }, (_, m) => at(groupOf(rank), m)).filter((p) => p !== rank);
  const scatter = Array.from(
    { length: n },
    (_, rank) => new Map(peers(rank).map((p) => [p, b.message(rank, p, qBytes(shards.queryRows(rank), heads) + kvBytes(shards.kvRows(rank), heads), `heads of ${p}`)])),
  );
  // hops[rank][t]: what rank sends along its ring at step t, for the same member of the next group's step t + 1.
  const hops = Array.from({ length: n }, (_, rank) =>
    Array.from({ length: r - 1 }, (_, t) => {
      const source = mod(groupOf(rank) - t, r);
      return b.message(rank, at(mod(groupOf(rank) + 1, r), memberOf(rank)), kvBytes(ring.kvRows(source), heads), `kv of group ${source}`);
    }),
  );
  const gather = Array.from({ length: n }, (_, rank) => new Map(peers(rank).map((p) => [p, b.message(rank, p, partialBytes(shards.queryRows(p), heads), `results for ${p}`)])));
  for (let rank = 0; rank < n; rank++) {
    const [group, member] = [groupOf(rank), memberOf(rank)];
    // Heads sliced out of the shard, packed into frames, then placed into the group's rows: three copies.
    b.step(rank, { label: 'all-to-all heads', copyBytes: 3 * (qBytes(shards.queryRows(rank), w) + kvBytes(shards.kvRows(rank), w)), sendsAtStart: [...scatter[rank]!.values()] });
    for (let t = 0; t < r; t++) {
      const source = mod(group - t, r);
      const work = ring.work(group, source);
      b.step(rank, {
        label: `kv of group ${source}`,
        flops: attentionFlops(work.pairs, heads),
        maskedFlops: attentionFlops(work.maskedPairs, heads),
        kernelCalls: work.calls,
        pieces: work.pieces,
        kernelBytes: blockBytes(work.queryRows, work.keyRows, heads),
        mergeBytes: mergeBytes(mergedRows(work.pieces), heads),
        needs: t === 0 ? peers(rank).map((p) => scatter[p]!.get(rank)!) : [hops[at(mod(group - 1, r), member)]![t - 1]!],
        sendsAtStart: t < r - 1 ? [hops[rank]![t]!] : [],
        sendsAtEnd: t === r - 1 ? [...gather[rank]!.values()] : [],
      });
    }
    // Results packed per token owner, then placed into the owner's heads: two copies.
    b.step(rank, { label: 'all-to-all results', copyBytes: 2 * partialBytes(shards.queryRows(rank), w), needs: peers(rank).map((p) => gather[p]!.get(rank)!) });
  }
  const largest = (rows: (i: number) => number, count: number): number => Math.max(...Array.from({ length: count }, (_, i) => rows(i)));
  const [rows, kvRows, groupRows, groupKvRows] = [largest(shards.queryRows, n), largest(shards.kvRows, n), largest(ring.queryRows, r), largest(ring.kvRows, r)];
  // Own shard, the group's rows for 1/U of the heads, two KV buffers in flight, the ring's float32 accumulator
  // plus one block result, and this rank's gathered result.
  const peakMemoryBytes =
    qBytes(rows, w) + kvBytes(kvRows, w) + qBytes(groupRows, heads) + 3 * kvBytes(groupKvRows, heads) + 2 * floatPartialBytes(groupRows, heads) + floatPartialBytes(rows, w);
  return b.build({ strategy: 'usp', layout: 'zigzag', pass: 'pass-kv', peakMemoryBytes, requestBytes: requestBytes(w) });
}
