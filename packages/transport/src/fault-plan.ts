import { seededRandom, UsageError } from '@seqpar/core';

/**
 * A declarative list of faults, each triggered by a rank's k-th send (`at`, counting from 1, over every frame the
 * rank sends, control replies included, or only those to `to` when given). JSON-serialisable, so worker
 * processes receive it as is; with the same plan, seed and traffic the same frames are hit the same way.
 *
 * - kill: the rank dies before that send (its process exits on SIGKILL, or an in-process rank's transport dies).
 * - stall: the rank's sends all stop for `ms` from that send on (a hung rank whose heartbeats still answer).
 * - drop / duplicate / corrupt: that one frame is lost, sent twice, or has payload bytes flipped after its
 *   checksum was computed (the receiver must notice).
 * - delay: that frame arrives `ms` late, holding up the frames behind it on its link.
 * - partition: from each side's `at`-th send to the other on, no frame crosses between the two ranks.
 */
export type Fault =
  | { readonly kind: 'kill' | 'drop' | 'duplicate' | 'corrupt'; readonly rank: number; readonly at: number; readonly to?: number }
  | { readonly kind: 'stall' | 'delay'; readonly rank: number; readonly at: number; readonly ms: number; readonly to?: number }
  | { readonly kind: 'partition'; readonly ranks: readonly [number, number]; readonly at?: number };

export type FaultKind = Fault['kind'];

export interface FaultPlan {
  readonly faults: readonly Fault[];
  /** Seeds which payload bytes a corruption flips. Default 0. */
  readonly seed?: number;
}

/** What happens to one send. `holdUntil` (performance.now() time): the rank is stalled until then. */
export interface SendFaults {
  readonly kill: boolean;
  readonly drop: boolean;
  readonly duplicate: boolean;
  readonly corrupt: boolean;
  readonly delayMs: number;
  readonly holdUntil: number;
}

/** A fault that fired, for reports and tests. */
export interface FiredFault {
  readonly fault: Fault;
  readonly rank: number;
  readonly to: number;
}

export interface FaultInjectorOptions {
  /** Runs when a kill fires; e.g. a worker process SIGKILLs itself. Without it the rank's transport dies. */
  readonly onKill?: (rank: number) => void;
}

/**
 * The live state of a plan: per-fault send counters, so each fault fires once over the life of the injector
 * (a partition, once started, stays). Give one injector to every transport a rank opens, so a fault is not
 * replayed in each new world after a recovery; a rank restarted in a fresh process runs without faults.
 */
export class FaultInjector {
  readonly fired: FiredFault[] = [];
  private readonly counts: number[];
  private readonly stalledUntil = new Map<number, number>();

  constructor(
    readonly plan: FaultPlan,
    private readonly options: FaultInjectorOptions = {},
  ) {
    checkFaultPlan(plan);
    this.counts = new Array(plan.faults.length * 2).fill(0);
  }

  /** Counts one send of `rank` to `to` and answers what the plan does to it (undefined: nothing). */
  onSend(rank: number, to: number): SendFaults | undefined {
    let effects: { -readonly [K in keyof SendFaults]: SendFaults[K] } | undefined;
    const hit = () => (effects ??= { kill: false, drop: false, duplicate: false, corrupt: false, delayMs: 0, holdUntil: 0 });
    this.plan.faults.forEach((fault, index) => {
      if (fault.kind === 'partition') {
        const side = fault.ranks.indexOf(rank);
        if (side < 0 || fault.ranks[1 - side] !== to) return;
        const count = ++this.counts[index * 2 + side]!;
        if (count === (fault.at ?? 1)) this.fired.push({ fault, rank, to });
        if (count >= (fault.at ?? 1)) hit().drop = true;
        return;
      }
      if (fault.rank !== rank || (fault.to !== undefined && fault.to !== to)) return;
      if (++this.counts[index * 2]! !== fault.at) return;
      this.fired.push({ fault, rank, to });
      const e = hit();
      if (fault.kind === 'stall') this.stalledUntil.set(rank, Math.max(this.stalledUntil.get(rank) ?? 0, performance.now() + fault.ms));
      else if (fault.kind === 'delay') e.delayMs += fault.ms;
      else e[fault.kind] = true;
    });
    const stalled = this.stalledUntil.get(rank) ?? 0;
    if (stalled > performance.now()) hit().holdUntil = stalled;
    return effects;
  }

  /** A copy of `payload` with 1 to 3 bytes flipped (seeded by the plan and how many corruptions came before). */
  corrupt(payload: Uint8Array): Uint8Array {
    const copy = payload.slice();
    if (!copy.byteLength) return copy;
    const random = seededRandom(((this.plan.seed ?? 0) + Math.imul(this.fired.length, 0x9e3779b1)) >>> 0);
    const flips = 1 + Math.floor(random() * 3);
    for (let i = 0; i < flips; i++) copy[Math.floor(random() * copy.byteLength)]! ^= 1 + Math.floor(random() * 255);
    return copy;
  }

  /** A kill fired on `rank`: true if `onKill` took care of it (it normally does not return then). */
  kill(rank: number): boolean {
    if (!this.options.onKill) return false;
    this.options.onKill(rank);
    return true;
  }
}

/** Malformed plans are usage errors before anything runs. `worldSize` bounds the ranks when known. */
export function checkFaultPlan(plan: FaultPlan, worldSize?: number): void {
  if (!plan || !Array.isArray(plan.faults)) throw new UsageError('a fault plan needs a faults array');
  const isRank = (value: unknown) => typeof value === 'number' && Number.isInteger(value) && value >= 0 && (worldSize === undefined || value < worldSize);
  const isCount = (value: unknown) => typeof value === 'number' && Number.isInteger(value) && value >= 1;
  for (const fault of plan.faults) {
    const bad = (why: string) => new UsageError(`fault ${JSON.stringify(fault)}: ${why}`);
    if (fault.kind === 'partition') {
      if (!Array.isArray(fault.ranks) || fault.ranks.length !== 2 || !fault.ranks.every(isRank) || fault.ranks[0] === fault.ranks[1])
        throw bad('partition needs two distinct ranks');
      if (fault.at !== undefined && !isCount(fault.at)) throw bad("'at' must be an integer >= 1");
      continue;
    }
    if (!FAULT_KINDS.has(fault.kind)) throw bad(`unknown kind (one of ${[...FAULT_KINDS].join(', ')})`);
    if (!isRank(fault.rank)) throw bad(`'rank' must be a rank${worldSize === undefined ? '' : ` below ${worldSize}`}`);
    if (!isCount(fault.at)) throw bad("'at' must be an integer >= 1 (the rank's k-th send)");
    if (fault.to !== undefined && (!isRank(fault.to) || fault.to === fault.rank)) throw bad("'to' must be another rank");
    if ((fault.kind === 'stall' || fault.kind === 'delay') && !(Number.isFinite(fault.ms) && fault.ms >= 0)) throw bad("'ms' must be a finite number >= 0");
  }
}

const FAULT_KINDS = new Set<string>(['kill', 'stall', 'drop', 'duplicate', 'corrupt', 'delay', 'partition']);
