import type { StrategyName } from '@seqpar/core';
import { STRATEGIES } from '@seqpar/strategies';
import { floatPartialBytes, passKvSchedule } from './pass-kv-schedule.js';
import { passQSchedule } from './pass-q-schedule.js';
import { ScheduleBuilder, type Schedule } from './schedule.js';
import { balancedShardWork, plannedShardWork, wholeRequestWork } from './shard-work.js';
import { ulyssesSchedule } from './ulysses-schedule.js';
import { defaultUlyssesDegree, uspSchedule } from './usp-schedule.js';
import { kvBytes, qBytes, requestBytes, type AttentionWorkload } from './workload.js';

/**
 * The schedule of `strategy` on `degree` ranks (usp with `ulyssesDegree` ranks per group). Without a cached prefix the ring family and TokenRing follow the
 * real block plans; with one, every sharded strategy sees a balanced 1/N² share per (owner, holder) pair.
 */
export function describeSchedule(strategy: StrategyName, w: AttentionWorkload, degree: number, ulyssesDegree = defaultUlyssesDegree(w, degree)): Schedule {
  if (strategy === 'single' || degree === 1) return singleSchedule(strategy, w);
  const layout = STRATEGIES[strategy].layout;
  const shards = w.prefix > 0 ? balancedShardWork(w, degree) : plannedShardWork(layout, w, degree);
  switch (strategy) {
    case 'ring':
    case 'striped':
    case 'zigzag':
      return passKvSchedule(strategy, layout, shards, w, degree);
    case 'token-ring':
      return passQSchedule(layout, shards, w, degree);
    case 'ulysses':
      return ulyssesSchedule(shards, w, degree);
    case 'usp':
      return uspSchedule(w, degree, ulyssesDegree);
  }
}

/** Everything on one rank: the whole request's kernel calls. */
function singleSchedule(strategy: StrategyName, w: AttentionWorkload): Schedule {
  const b = new ScheduleBuilder(1);
  b.step(0, { label: 'attend', ...wholeRequestWork(w) });
  const peakMemoryBytes = qBytes(w.seq, w) + kvBytes(w.seq + w.prefix, w) + floatPartialBytes(w.seq, w);
  return b.build({ strategy, layout: STRATEGIES[strategy].layout, pass: 'none', peakMemoryBytes, requestBytes: requestBytes(w) });
}
