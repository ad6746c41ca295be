import { SeqparError } from '@seqpar/core';
import { requestOverheadMs, routeMs, routeOf, stepTimes, type HardwareProfile, type Schedule } from '@seqpar/planner';
import { MinHeap } from './min-heap.js';

/** One timed interval of the projection, in ms from the start of the request. */
export interface SimSpan {
  readonly rank: number;
  readonly track: 'compute' | 'send' | 'recv';
  readonly name: string;
  readonly startMs: number;
  readonly endMs: number;
  /** The message a send/recv span carries. */
  readonly message?: number;
}

export interface Projection {
  readonly wallMs: number;
  /** Per rank: compute busy time / wall time. */
  readonly utilization: readonly number[];
  readonly computeMs: readonly number[];
  readonly spans: readonly SimSpan[];
}

type SimEvent = { time: number; kind: 'start'; rank: number } | { time: number; kind: 'issue'; message: number };

/**
 * Discrete-event replay of a schedule on a profile. Each rank runs its steps in order; a step starts when the
 * rank's previous step is done and every message it needs has arrived. A message is issued at its step's start or
 * end and crosses the fabric as FIFO traffic on two resources, the sender's outgoing port and the receiver's
 * incoming port (both directions of a device are separate; with a topology, ports within and between hosts are
 * separate too, and links between hosts have their own speed: topology.ts): it starts when both are free, holds them for
 * bytes / bandwidth, and arrives one latency later. Events are handled in time order, so ports serve messages in
 * the order they were issued. A step's host-side work (copies, merges) runs after its kernels on a host thread:
 * one per rank, or the profile's `hostThreads` shared by all ranks (in-process ranks share one JavaScript thread),
 * where it waits for the thread to be free.
 */
export function project(schedule: Schedule, profile: HardwareProfile): Projection {
  const n = schedule.degree;
  const arrival = new Float64Array(schedule.messages.length).fill(NaN);
  /** When each port is free (routeOf names them: one per device, or within and between hosts apart). */
  const portFree = new Map<string, number>();
  const nextStep = new Int32Array(n);
  const computeFree = new Float64Array(n);
  const computeMs = new Float64Array(n);
  const hostFree = new Float64Array(profile.hostThreads ?? n);
  const waiting = new Set<number>();
  const spans: SimSpan[] = [];
  const events = new MinHeap<SimEvent>();

  const readyAt = (rank: number): number | undefined => {
    const step = schedule.ranks[rank]![nextStep[rank]!];
    if (!step) return undefined;
    let time = computeFree[rank]!;
    for (const id of step.needs) {
      if (Number.isNaN(arrival[id]!)) return undefined;
      time = Math.max(time, arrival[id]!);
    }
    return time;
  };
  const tryStart = (rank: number): void => {
    const time = readyAt(rank);
    if (time === undefined) {
      if (nextStep[rank]! < schedule.ranks[rank]!.length) waiting.add(rank);
      return;
    }
    waiting.delete(rank);
    events.push({ time, kind: 'start', rank });
  };

  for (let r = 0; r < n; r++) tryStart(r);
  while (events.size > 0) {
    const event = events.pop()!;
    if (event.kind === 'start') {
      const step = schedule.ranks[event.rank]![nextStep[event.rank]!]!;
      const { deviceMs, hostMs } = stepTimes(step, profile, n);
      const thread = profile.hostThreads === undefined ? event.rank : hostFree.indexOf(Math.min(...hostFree));
      const end = hostMs > 0 ? Math.max(event.time + deviceMs, hostFree[thread]!) + hostMs : event.time + deviceMs;
      if (hostMs > 0) hostFree[thread] = end;
      spans.push({ rank: event.rank, track: 'compute', name: step.label, startMs: event.time, endMs: end });
      computeMs[event.rank]! += deviceMs + hostMs;
      computeFree[event.rank] = end;
      nextStep[event.rank]!++;
      for (const message of step.sendsAtStart) events.push({ time: event.time, kind: 'issue', message });
      for (const message of step.sendsAtEnd) events.push({ time: end, kind: 'issue', message });
      tryStart(event.rank);
    } else {
      const m = schedule.messages[event.message]!;
      const route = routeOf(profile, m.from, m.to);
      const start = Math.max(event.time, portFree.get(route.egress) ?? 0, portFree.get(route.ingress) ?? 0);
      const wireEnd = start + routeMs(route, m.bytes);
      portFree.set(route.egress, wireEnd);
      portFree.set(route.ingress, wireEnd);
      arrival[m.id] = wireEnd + route.latencyMs;
      spans.push({ rank: m.from, track: 'send', name: `${m.label} → ${m.to}`, startMs: start, endMs: wireEnd, message: m.id });
      spans.push({ rank: m.to, track: 'recv', name: `${m.label} ← ${m.from}`, startMs: start + route.latencyMs, endMs: arrival[m.id]!, message: m.id });
      if (waiting.has(m.to)) tryStart(m.to);
    }
  }
  if (waiting.size > 0) {
    throw new SeqparError('ERR_INTERNAL', `schedule of ${schedule.strategy} deadlocks: rank(s) ${[...waiting].join(', ')} wait on messages never sent`);
  }
  const wallMs = requestOverheadMs(schedule, profile) + Math.max(...computeFree, ...Array.from(arrival).filter((t) => !Number.isNaN(t)));
  // A rank busy the whole time sums its steps in another order than the clock advanced: clamp the round-off.
  return { wallMs, utilization: Array.from(computeMs, (ms) => (wallMs > 0 ? Math.min(1, ms / wallMs) : 0)), computeMs: Array.from(computeMs), spans };
}
