import { isSeqparError, seededRandom } from '@seqpar/core';
import type { StrategyName } from '@seqpar/strategies';
import type { Fault, TransportKind } from '@seqpar/transport';
import { describe, expect, it } from 'vitest';
import { createCluster } from '../src/api/cluster.js';
import { expectExact, problem } from './attention-check.js';
import { expectAllGone, killAll } from './processes.js';

// Injected faults are expected here: keep the workers' warnings off the test output.
process.env.SEQPAR_LOG_LEVEL = 'silent';

const STRATEGIES: readonly StrategyName[] = ['ring', 'striped', 'zigzag', 'token-ring', 'ulysses'];
const KINDS: readonly Fault['kind'][] = ['kill', 'stall', 'drop', 'duplicate', 'delay', 'corrupt', 'partition'];
/** What a failed request may report: every one names what failed. */
const FAILURE_CODES = ['ERR_PEER_LOST', 'ERR_TIMEOUT', 'ERR_CORRUPT_FRAME', 'ERR_FRAME_SEQUENCE', 'ERR_CLOSED'];

interface Case {
  readonly seed: number;
  readonly strategy: StrategyName;
  readonly transport: TransportKind;
  readonly workers: number;
  readonly causal: boolean;
  readonly faults: Fault[];
}

/**
 * A fault at a random rank's k-th send, k small enough that most fire within one request (a worker sends a few
 * frames to its peers, then its reply). Stalls and delays are either short (the request still succeeds) or
 * longer than the request's deadline.
 */
function randomFault(random: () => number, workers: number): Fault {
  const int = (n: number) => Math.floor(random() * n);
  const kind = KINDS[int(KINDS.length)]!;
  const rank = int(workers);
  const at = 1 + int(4);
  if (kind === 'partition') return { kind, ranks: [rank, (rank + 1 + int(workers - 1)) % workers], at: 1 + int(2) };
  if (kind === 'stall' || kind === 'delay') return { kind, rank, at, ms: [15, 120, 2500][int(3)]! };
  return { kind, rank, at };
}

function campaign(seed: number, count: number, transports: readonly TransportKind[], workers: number): Case[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, (_, i) => ({
    seed: seed + i,
    strategy: STRATEGIES[i % STRATEGIES.length]!,
    transport: transports[i % transports.length]!,
    workers,
    causal: random() < 0.5,
    faults: Array.from({ length: 1 + Math.floor(random() * 2) }, () => randomFault(random, workers)),
  }));
}

interface Outcome {
  readonly ok: boolean;
  readonly code?: string;
}

/**
 * One cluster with one fault plan, one request: it must end within `boundMs` and either match the fp64 reference
 * or fail with a typed error naming a rank. `followUp` sends a second request on the recovered cluster.
 */
async function runCase(c: Case, timing: { requestMs: number; healthMs: number; boundMs: number }, followUp: boolean): Promise<Outcome[]> {
  const hkv = c.workers;
  const p = problem(12 * c.workers + (c.seed % 7), 2 * hkv, hkv, 16, c.seed);
  const started = performance.now();
  const cluster = await createCluster({
    workers: c.workers,
    transport: c.transport,
    faults: { faults: c.faults, seed: c.seed },
    requestTimeoutMs: timing.requestMs,
    healthTimeoutMs: timing.healthMs,
  });
  const pids = cluster.pids();
  const outcomes: Outcome[] = [];
  try {
    for (let round = 0; round < (followUp ? 2 : 1); round++) {
      const result = await cluster.attention(p.q, p.k, p.v, { strategy: c.strategy, causal: c.causal }).then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      if ('value' in result) {
        expectExact(p, result.value, c.causal);
        outcomes.push({ ok: true });
      } else {
        const { error } = result;
        expect(isSeqparError(error), `untyped failure in ${JSON.stringify(c)}: ${String(error)}`).toBe(true);
        const { code, message } = error as { code: string; message: string };
        expect(FAILURE_CODES, `${code}: ${message}`).toContain(code);
        // A follow-up may time out in the queue while a stalled rank holds up recovery: nothing ran, no rank to name.
        const named = round === 0 ? /\brank \d\b/ : /\brank \d\b|^attention request did not finish within \d+ ms$/;
        expect(message, `${JSON.stringify(c)} round ${round}`).toMatch(named);
        outcomes.push({ ok: false, code });
      }
    }
  } finally {
    await cluster.close();
    await expectAllGone(pids).finally(() => killAll(pids));
  }
  const elapsed = performance.now() - started;
  expect(elapsed, `case ${JSON.stringify(c)} took ${elapsed.toFixed(0)} ms`).toBeLessThan(timing.boundMs);
  return outcomes;
}

function summary(outcomes: Outcome[]): string {
  const counts = new Map<string, number>();
  for (const o of outcomes) counts.set(o.ok ? 'ok' : o.code!, (counts.get(o.ok ? 'ok' : o.code!) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${k} ${n}`).join(', ');
}

describe('fault campaign: every run ends in bounded time, exact or with a typed error', () => {
  it('inproc: 40 clusters, 3 workers, random faults over every strategy, then a request on the recovered cluster', async () => {
    const cases = campaign(8001, 40, ['inproc'], 3);
    const outcomes: Outcome[] = [];
    for (const c of cases) outcomes.push(...(await runCase(c, { requestMs: 1000, healthMs: 300, boundMs: 4000 }, true)));
    const faults = cases.reduce((n, c) => n + c.faults.length, 0);
    console.info(`inproc campaign: ${faults} faults, ${outcomes.length} requests: ${summary(outcomes)}`);
    expect(faults).toBeGreaterThanOrEqual(50);
    expect(new Set(cases.flatMap((c) => c.faults.map((f) => f.kind)))).toEqual(new Set(KINDS));
    expect(outcomes.some((o) => o.ok) && outcomes.some((o) => !o.ok)).toBe(true);
  }, 240_000);

  it('ws and shm: 8 clusters of 2 worker processes with random faults (kills exit the process)', async () => {
    const cases = campaign(9001, 8, ['ws', 'shm'], 2);
    const outcomes: Outcome[] = [];
    for (const c of cases) outcomes.push(...(await runCase(c, { requestMs: 1500, healthMs: 400, boundMs: 9000 }, false)));
    console.info(`process campaign: ${cases.reduce((n, c) => n + c.faults.length, 0)} faults: ${summary(outcomes)}`);
  }, 120_000);
});
