import { constants } from 'node:buffer';
import { totalmem } from 'node:os';
import { UsageError } from '@seqpar/core';
import { describeSchedule, hostProfile, workloadOf } from '@seqpar/planner';
import type { StrategyName } from '@seqpar/strategies';
import type { QkvShape } from './random-qkv.js';

export interface MemoryRequest extends QkvShape {
  readonly causal: boolean;
  /** Undefined with `--strategy auto`: the planner then refuses what fits nowhere, before anything is allocated. */
  readonly strategy?: StrategyName;
  readonly workers: number;
  readonly transport: string;
  /** The ranks run on a cluster elsewhere: only this process's own tensors are checked here. */
  readonly remote: boolean;
}

const GIB = 2 ** 30;
const SAMPLE_SEQ = 65_536;
const gib = (bytes: number): string => `${(bytes / GIB).toFixed(2)} GiB`;

/**
 * Refuses a request this host cannot hold, before a byte of it is allocated: a tensor over V8's typed-array limit,
 * this process's q, k, v, out and lse plus every local rank's peak (the planner's estimate, the figure `seqpar plan`
 * and `--strategy auto` use) over the host's memory, or a rank's peak over the profile's budget per rank.
 */
export function checkRequestFits(request: MemoryRequest): void {
  const { seq, heads, kvHeads, headDim } = request;
  const qBytes = 4 * seq * heads * headDim;
  const kvBytes = 4 * seq * kvHeads * headDim;
  const largest = Math.max(qBytes, kvBytes);
  const shape = `S ${seq}, ${heads} heads / ${kvHeads} kv heads, head dim ${headDim}`;
  if (largest > constants.MAX_LENGTH) {
    throw new UsageError(`${shape}: one tensor would take ${gib(largest)}, over Node's ${gib(constants.MAX_LENGTH)} limit per array`, 'ERR_NO_FEASIBLE_PLAN');
  }
  const ownBytes = 2 * qBytes + 2 * kvBytes + 4 * heads * seq;
  const ranks = rankPeak(request);
  const hostBytes = ownBytes + (ranks?.bytes ?? 0) * (ranks?.degree ?? 0);
  if (hostBytes > totalmem()) {
    const where = ranks ? ` and ${ranks.degree} local rank(s) ${gib(ranks.bytes)} each` : '';
    throw new UsageError(`${shape} needs ${gib(hostBytes)} here (q, k, v, out, lse ${gib(ownBytes)}${where}), over this host's ${gib(totalmem())}`, 'ERR_NO_FEASIBLE_PLAN');
  }
  if (ranks && ranks.bytes > ranks.budget) {
    throw new UsageError(
      `${shape} with ${request.strategy} on ${ranks.degree} worker(s) needs ${gib(ranks.bytes)} per rank, over the ${gib(ranks.budget)} budget of profile ${ranks.profile}` +
        ` (see \`seqpar plan --seq ${seq} --heads ${heads} --kv-heads ${kvHeads} --head-dim ${headDim} --workers N\`)`,
      'ERR_NO_FEASIBLE_PLAN',
    );
  }
}

function rankPeak(request: MemoryRequest): { degree: number; bytes: number; budget: number; profile: string } | undefined {
  if (request.remote || request.strategy === undefined) return undefined;
  const profile = hostProfile(request.transport);
  const degree = request.strategy === 'single' ? 1 : request.workers;
  const { seq, heads, kvHeads, headDim, causal } = request;
  // The planner's memory model is linear in S (shares of q, k, v and partials) but building a schedule costs
  // time that grows with S² (30 s at 10M tokens): price a shorter request and scale.
  const sample = Math.min(seq, SAMPLE_SEQ);
  const workload = workloadOf({ seq: sample, heads, kvHeads, headDim, causal }, profile);
  const bytes = (describeSchedule(request.strategy, workload, degree).peakMemoryBytes * seq) / sample;
  return { degree, bytes, budget: profile.deviceMemoryBytes, profile: profile.name };
}
