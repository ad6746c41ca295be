import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { epochNow, toChromeTrace } from '@seqpar/core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { hops } from '../src/coordinator/align-clocks.js';
import { runCoordinator, type CoordinatorHandle } from '../src/coordinator/run-coordinator.js';
import { expectExact, problem } from './attention-check.js';
import { expectAllGone, killAll, runtimeScript } from './processes.js';

const TOKEN = 'trace-clock-token';
const WORKER_SCRIPT = runtimeScript(`
const worker = await runtime.runWorker({ token: process.env.TEST_TOKEN, healthTimeoutMs: 2000, rejoinTimeoutMs: 2000 });
await worker.done;`);
// Each worker's clock is off the coordinator's by seconds, as another host's could be, and in opposite directions.
const SKEWS_MS = [4000, -2500];

afterAll(() => rmSync(dirname(WORKER_SCRIPT), { recursive: true, force: true }));

describe('merged traces across processes with skewed clocks', () => {
  let coordinator: CoordinatorHandle | undefined;
  const children: ChildProcess[] = [];
  afterEach(async () => {
    await coordinator?.stop();
    killAll(children.flatMap((child) => (child.pid ? [child.pid] : [])));
  });

  it('puts every rank on the coordinator clock: spans inside the request, every hop forward in time', async () => {
    coordinator = await runCoordinator({ listen: '127.0.0.1:0', worldSize: 2, token: TOKEN, healthTimeoutMs: 2000, connectTimeoutMs: 30_000 });
    const port = coordinator.address.split(':').pop()!;
    for (const [rank, skew] of SKEWS_MS.entries()) {
      const env = {
        ...process.env,
        RANK: String(rank),
        WORLD_SIZE: '2',
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: port,
        TEST_TOKEN: TOKEN,
        SEQPAR_TEST_CLOCK_SKEW_MS: String(skew),
        NODE_OPTIONS: '',
      };
      children.push(spawn(process.execPath, [WORKER_SCRIPT], { env, stdio: ['ignore', 'ignore', 'inherit'] }));
    }
    const cluster = await coordinator.ready;
    const p = problem(128, 4, 2, 16);

    // Striped and TokenRing send both ways between the two ranks under a causal mask (causal ring only 0 -> 1).
    for (const strategy of ['striped', 'token-ring'] as const) {
      const before = epochNow();
      const result = await cluster.attention(p.q, p.k, p.v, { strategy, causal: true, trace: true });
      const after = epochNow();
      expectExact(p, result, true);
      const spans = result.stats.spans!;
      expect(spans).toHaveLength(2);
      // Uncorrected, rank 0's spans would sit 4 s after the request and rank 1's 2.5 s before it.
      for (const span of spans.flat()) {
        expect(span.startMs).toBeGreaterThanOrEqual(before - 1);
        expect(span.startMs + span.durationMs).toBeLessThanOrEqual(after + 1);
      }
      const requestHops = hops(spans);
      expect(requestHops.some((hop) => hop.from === 0 && hop.to === 1)).toBe(true);
      expect(requestHops.some((hop) => hop.from === 1 && hop.to === 0)).toBe(true);
      for (const hop of requestHops) expect(hop.recvEndMs).toBeGreaterThanOrEqual(hop.sendStartMs - 1e-6);

      // The Perfetto file: every flow ends no earlier than it starts.
      const starts = new Map<number, number>();
      const events = toChromeTrace(spans).traceEvents;
      for (const event of events) if (event.ph === 's') starts.set(event.id!, event.ts);
      const ends = events.filter((event) => event.ph === 'f');
      expect(ends.length).toBe(requestHops.length);
      for (const end of ends) expect(end.ts).toBeGreaterThanOrEqual(starts.get(end.id!)! - 1e-3);
    }

    const pids = children.map((child) => child.pid!);
    await coordinator.stop();
    coordinator = undefined;
    await expectAllGone(pids, 10_000);
  });
});
