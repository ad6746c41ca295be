import type { LayoutKind, StrategyName } from '@seqpar/core';
import type { KernelPieces } from './kernel-table.js';

/**
 * A strategy's schedule as data: what every rank computes at each step and which messages it sends. The planner's
 * cost model evaluates it step-synchronously; the simulator (@seqpar/sim) replays it event by event. Both read the
 * same description, built once per strategy in the *-schedule.ts files.
 */
/** Which tensor travels around the ring: KV to the queries (ring family) or queries to the KV (TokenRing). */
export type PassMode = 'pass-kv' | 'pass-q' | 'none';

export interface ScheduledMessage {
  readonly id: number;
  readonly from: number;
  readonly to: number;
  readonly bytes: number;
  readonly label: string;
}

export interface ScheduleStep {
  readonly label: string;
  /** Attention FLOPs of the step's kernel calls. */
  readonly flops: number;
  /** The part of `flops` in blocks under a causal mask (kernels may run those slower: HardwareProfile.causalAttentionFlops). */
  readonly maskedFlops: number;
  readonly kernelCalls: number;
  /** The step's kernel calls by shape, as the strategies cut their blocks (a calibrated kernel table prices each). */
  readonly pieces: readonly KernelPieces[];
  /** Bytes the kernels stream from memory (q, k, v of their blocks): what bounds decode-sized blocks. */
  readonly kernelBytes: number;
  /** Bytes the rank's host code copies into fresh buffers (packing frames, moving heads between layouts). */
  readonly copyBytes: number;
  /** Bytes read and written merging partial results. */
  readonly mergeBytes: number;
  /** Messages that must have arrived before the step's compute starts. */
  readonly needs: readonly number[];
  /** Messages issued when the step starts (forwarding what the rank already holds). */
  readonly sendsAtStart: readonly number[];
  /** Messages issued when the step's compute ends (its results). */
  readonly sendsAtEnd: readonly number[];
}

export interface Schedule {
  readonly strategy: StrategyName;
  readonly degree: number;
  readonly layout: LayoutKind;
  readonly pass: PassMode;
  /** ranks[r][t]: rank r's step t. */
  readonly ranks: ReadonlyArray<readonly ScheduleStep[]>;
  readonly messages: readonly ScheduledMessage[];
  /** Largest memory any rank holds at once, bytes. */
  readonly peakMemoryBytes: number;
  /** The request's tensors in float32 as the caller hands them over and gets them back: q, k, v, out and lse. */
  readonly requestBytes: number;
}

/** Collects messages and steps while a schedule is built. */
export class ScheduleBuilder {
  readonly messages: ScheduledMessage[] = [];
  readonly ranks: ScheduleStep[][];

  constructor(readonly degree: number) {
    this.ranks = Array.from({ length: degree }, () => []);
  }

  message(from: number, to: number, bytes: number, label: string): number {
    const id = this.messages.length;
    this.messages.push({ id, from, to, bytes, label });
    return id;
  }

  step(rank: number, step: Partial<ScheduleStep> & Pick<ScheduleStep, 'label'>): void {
    this.ranks[rank]!.push({
      flops: 0,
      maskedFlops: 0,
      kernelCalls: 0,
      pieces: [],
      kernelBytes: 0,
      copyBytes: 0,
      mergeBytes: 0,
      needs: [],
      sendsAtStart: [],
      sendsAtEnd: [],
      ...step,
    });
  }

  build(meta: Pick<Schedule, 'strategy' | 'layout' | 'pass' | 'peakMemoryBytes' | 'requestBytes'>): Schedule {
    return { ...meta, degree: this.degree, ranks: this.ranks, messages: this.messages };
  }
}
