import { planBlocks, shardLength, type LayoutKind } from '@seqpar/core';
import { mod } from './schedule.js';
import { maskedPairs, totalPairs, visiblePairs, type AttentionWorkload } from './workload.js';

/** The work of one rank's queries against one rank's KV shard. */
export interface BlockWork {
  readonly pairs: number;
  /** The part of `pairs` in causally masked blocks. */
  readonly maskedPairs: number;
  readonly calls: number;
  /** Query rows the kernel calls cover (what the merges touch). */
  readonly queryRows: number;
  /** Key rows the kernel calls read. */
  readonly keyRows: number;
}

/** The side of the square block one of `work`'s kernel calls is about as large as (ScheduleStep.blockRows). */
export const blockRowsOf = (work: BlockWork): number => (work.calls > 0 ? Math.sqrt(work.queryRows * work.keyRows) / work.calls : Infinity);

/** How a request's queries and KV are spread over `degree` ranks, and the work between any two shards. */
export interface ShardWork {
  queryRows(rank: number): number;
  kvRows(rank: number): number;
  work(queryOwner: number, kvHolder: number): BlockWork;
}

/**
 * Without a cached prefix: the real pass-KV block plans of @seqpar/core. The owner's queries meet the holder's KV
 * at pass-KV step (owner - holder) mod N, so ring causal is unbalanced and striped/zigzag are balanced exactly as
 * the strategies run them.
 */
export function plannedShardWork(layout: LayoutKind, w: AttentionWorkload, degree: number): ShardWork {
  const rows = (rank: number): number => shardLength(layout, w.seq, degree, rank);
  return {
    queryRows: rows,
    kvRows: rows,
    work(owner, holder) {
      const blocks = planBlocks(layout, w.causal, w.seq, degree, owner, mod(owner - holder, degree));
      return blocks.reduce((sum, b) => {
        const pairs = visiblePairs(b.query.end - b.query.start, b.key.end - b.key.start, b.mask);
        return {
          pairs: sum.pairs + pairs,
          maskedPairs: sum.maskedPairs + (b.mask === 'none' ? 0 : pairs),
          calls: sum.calls + 1,
          queryRows: sum.queryRows + b.query.end - b.query.start,
          keyRows: sum.keyRows + b.key.end - b.key.start,
        };
      }, { pairs: 0, maskedPairs: 0, calls: 0, queryRows: 0, keyRows: 0 });
    },
  };
}

/**
 * With a cached prefix (prefill after a prompt cache, or decode): each rank holds 1/N of the queries and of the
 * cache, and a balanced layout gives every (owner, holder) pair 1/N² of the work (context-parallel inference,
 * Meta 2024, §3). Fractional rows are fine here: this is a volume model, not a layout.
 */
export function balancedShardWork(w: AttentionWorkload, degree: number): ShardWork {
  const pairs = totalPairs(w) / degree ** 2;
  const masked = maskedPairs(w) / degree ** 2;
  const queryRows = w.seq / degree;
  const keyRows = (w.seq + w.prefix) / degree;
  return {
    queryRows: () => queryRows,
    kvRows: () => keyRows,
    work: () => ({ pairs, maskedPairs: masked, calls: pairs > 0 ? 1 : 0, queryRows, keyRows }),
  };
}
