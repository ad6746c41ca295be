import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomTensor, seededRandom, type Tensor } from '@seqpar/core';
import type { StrategyName } from '@seqpar/strategies';
import { afterAll, describe, expect, it } from 'vitest';
import { createCluster, type Cluster } from '../src/api/cluster.js';
import { expectAllGone, killAll, runtimeScript } from './processes.js';

const shmEntries = () =>
  readdirSync('/dev/shm')
    .filter((name) => name.startsWith('seqpar'))
    .sort();
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

function maxDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

const STRATEGIES: StrategyName[] = ['ring', 'striped', 'zigzag', 'token-ring', 'ulysses'];

/** One request of a random length and strategy, checked against `single` on the same cluster. */
async function exactRequest(cluster: Cluster, random: () => number): Promise<void> {
  const seq = 300 + Math.floor(random() * 2701);
  const strategy = STRATEGIES[Math.floor(random() * STRATEGIES.length)]!;
  const causal = random() < 0.5;
  const [q, k, v] = [
    [seq, 4, 32],
    [seq, 2, 32],
    [seq, 2, 32],
  ].map((shape) => randomTensor(shape, random)) as [Tensor, Tensor, Tensor];
  const [sharded, single] = await Promise.all([cluster.attention(q, k, v, { strategy, causal }), cluster.attention(q, k, v, { strategy: 'single', causal })]);
  expect({ seq, strategy, out: maxDiff(sharded.out.data, single.out.data) < 1e-4, lse: maxDiff(sharded.lse.data, single.lse.data) < 1e-3 }).toEqual({
    seq,
    strategy,
    out: true,
    lse: true,
  });
}

const KILLED_SCRIPT = runtimeScript(`
const cluster = await runtime.createCluster({ workers: 2, transport: 'shm' });
const t = (n) => ({ data: new Float32Array(n * 2 * 16).fill(0.5), shape: [n, 2, 16] });
await cluster.attention(t(4096), t(4096), t(4096), { strategy: 'ulysses' });
process.stdout.write(JSON.stringify([process.pid, ...cluster.pids()]) + '\\n');
setInterval(() => {}, 1000);`);
afterAll(() => rmSync(dirname(KILLED_SCRIPT), { recursive: true, force: true }));

describe('soak: one shm cluster serving requests of every length', () => {
  it('stays exact, keeps worker RSS and fds flat, runs 16k Ulysses at a flat pace, and leaves /dev/shm as it found it', async () => {
    const before = shmEntries();
    const cluster = await createCluster({ workers: 2, transport: 'shm' });
    try {
      const pids = cluster.pids();
      const random = seededRandom(2026);
      for (let i = 0; i < 150; i++) await exactRequest(cluster, random); // warm-up: the same mix, until the session caches are full
      const warm = { rss: pids.map(rssMb), fds: pids.map(fds) };
      for (let i = 0; i < 150; i++) await exactRequest(cluster, random);
      const after = { rss: pids.map(rssMb), fds: pids.map(fds) };
      console.log(
        `worker RSS after warm-up ${warm.rss.map((x) => x.toFixed(0)).join(', ')} MB, after 150 requests ${after.rss.map((x) => x.toFixed(0)).join(', ')} MB; fds ${warm.fds} -> ${after.fds}`,
      );
      after.rss.forEach((rss, rank) => expect(rss).toBeLessThan(warm.rss[rank]! * 1.25));
      expect(after.fds).toEqual(warm.fds);

      // Long Ulysses all-to-alls: every received frame is released, so no transfer falls back to the socket and
      // the pace stays flat.
      const seq = 16_384;
      const random16k = seededRandom(16);
      const [q, k, v] = [
        [seq, 2, 32],
        [seq, 2, 32],
        [seq, 2, 32],
      ].map((shape) => randomTensor(shape, random16k)) as [Tensor, Tensor, Tensor];
      const times: number[] = [];
      for (let i = 0; i < 12; i++) times.push((await cluster.attention(q, k, v, { strategy: 'ulysses' })).stats.wallMs);
      console.log(`16k ulysses wall ms: ${times.map((x) => x.toFixed(0)).join(', ')}`);
      // A leak slows every later request, a busy host only some: compare the halves' medians, not the worst one.
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      expect(median(times.slice(6))).toBeLessThan(median(times.slice(0, 6)) * 1.5);
    } finally {
      await cluster.close();
    }
    expect(shmEntries()).toEqual(before);
  }, 240_000);

  it('leaves /dev/shm as it found it after a kill -9 of the coordinator and every worker', async () => {
    const before = shmEntries();
    const child = spawn(process.execPath, [KILLED_SCRIPT], { env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    const pids = JSON.parse(line.toString()) as number[];
    killAll(pids);
    await expectAllGone(pids);
    expect(shmEntries()).toEqual(before);
  }, 60_000);
});
