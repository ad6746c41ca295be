// A long life on one cluster: 2,000 attention requests of random lengths, strategies and masks, each checked
// against `single` on the same cluster, and 50 greedy generations of random prompts, each checked against an
// in-process one-rank generation, all on one shm cluster of 2 worker processes. Worker RSS, open fds, /dev/shm
// entries and the bytes the ranks sent are read at the start (after a warm-up of the same mix) and the end.
// Flags: --requests N (default 2000), --generations N (default 50).
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomTensor, seededRandom } from '@seqpar/core';
import { generate, loadModel, makeTinyModel } from '@seqpar/model';
import { createCluster } from '@seqpar/runtime';
import { writeReport } from './bench-report.mjs';

const STRATEGIES = ['ring', 'striped', 'zigzag', 'token-ring', 'ulysses'];
const MODEL = { layers: 2, hidden: 128, heads: 4, kvHeads: 2, vocab: 320, seed: 3 };

const shmEntries = () => readdirSync('/dev/shm').filter((name) => name.startsWith('seqpar')).length;
const rssMb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const fds = (pid) => readdirSync(`/proc/${pid}/fd`).length;
// Bytes a worker wrote through system calls: its sockets (ws links and shm doorbells) and its stderr. Payloads that
// travel in shm slots are memory copies, not writes, so this is the traffic that fell back to (or belongs on) sockets.
const writtenMb = (pid) => Number(/wchar:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))[1]) / 2 ** 20;
const flag = (args, name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);

function maxDiff(a, b) {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** One attention request against `single`; returns whether it matched and the bytes its ranks sent. */
async function attentionRound(cluster, random) {
  const seq = 64 + Math.floor(random() * 4033);
  const strategy = STRATEGIES[Math.floor(random() * STRATEGIES.length)];
  const causal = random() < 0.5;
  const [q, k, v] = [
    [seq, 4, 32],
    [seq, 2, 32],
    [seq, 2, 32],
  ].map((shape) => randomTensor(shape, random));
  const sharded = await cluster.attention(q, k, v, { strategy, causal });
  const single = await cluster.attention(q, k, v, { strategy: 'single', causal });
  const exact = maxDiff(sharded.out.data, single.out.data) < 1e-4 && maxDiff(sharded.lse.data, single.lse.data) < 1e-3;
  return { exact, bytes: sharded.stats.ranks.reduce((sum, rank) => sum + rank.bytesSent, 0) };
}

async function generationRound(cluster, dir, model, random) {
  const prompt = Array.from({ length: 16 + Math.floor(random() * 1009) }, () => Math.floor(random() * MODEL.vocab));
  const strategy = STRATEGIES[Math.floor(random() * STRATEGIES.length)];
  const options = { maxNewTokens: 8, greedy: true, ignoreEos: true };
  const run = cluster.generate(dir, prompt, { ...options, strategy });
  let next;
  while (!(next = await run.next()).done);
  const reference = await generate(model, prompt, { ...options, strategy: 'single', workers: 1 });
  return next.value.tokens.join() === reference.tokens.join();
}

function snapshot(pids) {
  return { rssMb: pids.map(rssMb), fds: pids.map(fds), shm: shmEntries(), writtenMb: pids.map(writtenMb) };
}

export async function run(args) {
  const requests = flag(args, '--requests', 2000);
  const generations = flag(args, '--generations', 50);
  const dir = await mkdtemp(join(tmpdir(), 'seqpar-soak-model-'));
  const shmBefore = shmEntries();
  const cluster = await createCluster({ workers: 2, transport: 'shm' });
  const pids = cluster.pids();
  const random = seededRandom(2000);
  const tally = { exact: 0, wrong: 0, generationsSame: 0, generationsDiffer: 0, bytes: 0 };
  const samples = [];
  try {
    await makeTinyModel(dir, MODEL);
    const model = await loadModel(dir);
    for (let i = 0; i < 50; i++) await attentionRound(cluster, random);
    const start = snapshot(pids);
    const started = performance.now();
    for (let i = 0; i < requests; i++) {
      const { exact, bytes } = await attentionRound(cluster, random);
      tally[exact ? 'exact' : 'wrong']++;
      tally.bytes += bytes;
      if (i % Math.ceil(requests / 40) === 0 || i === requests - 1) {
        samples.push({ requests: i + 1, rssMb: pids.map(rssMb) });
        process.stderr.write(`attention ${i + 1}/${requests}: exact ${tally.exact}, wrong ${tally.wrong}, RSS ${pids.map((pid) => rssMb(pid).toFixed(0)).join('/')} MB\n`);
      }
      if (i % Math.ceil(requests / generations) === 0 && tally.generationsSame + tally.generationsDiffer < generations) {
        tally[(await generationRound(cluster, dir, model, random)) ? 'generationsSame' : 'generationsDiffer']++;
      }
    }
    const end = snapshot(pids);
    const wallS = (performance.now() - started) / 1000;
    await cluster.close();
    const shmAfterClose = shmEntries();
    const row = (when, s) => ({
      when,
      rssMbRank0: s.rssMb[0],
      rssMbRank1: s.rssMb[1],
      fdsRank0: s.fds[0],
      fdsRank1: s.fds[1],
      devShmEntries: s.shm,
      socketMbRank0: s.writtenMb[0],
      socketMbRank1: s.writtenMb[1],
    });
    writeReport('soak', {
      title: `seqpar soak: ${requests} attention requests and ${generations} generations on one shm cluster of 2 worker processes`,
      columns: ['when', 'rssMbRank0', 'rssMbRank1', 'fdsRank0', 'fdsRank1', 'devShmEntries', 'socketMbRank0', 'socketMbRank1'],
      rows: [
        row('start (after 50 warm-up requests)', start),
        ...[0.25, 0.5, 0.75].map((part) => {
          const sample = samples[Math.round(part * (samples.length - 1))];
          return { when: `after ${sample.requests} requests`, rssMbRank0: sample.rssMb[0], rssMbRank1: sample.rssMb[1] };
        }),
        row('end', end),
        { when: 'after close', devShmEntries: shmAfterClose },
      ],
      notes: [
        `Attention: ${tally.exact} of ${requests} exact against single (out 1e-4, lse 1e-3), ${tally.wrong} not; lengths 64-4096, q 4 heads, k/v 2 heads, dim 32; strategies ${STRATEGIES.join(', ')}; causal half the time.`,
        `Generation: ${tally.generationsSame} of ${tally.generationsSame + tally.generationsDiffer} greedy runs gave the one-rank in-process tokens (tiny model ${MODEL.layers} layers, hidden ${MODEL.hidden}, prompts 16-1024, 8 tokens).`,
        `Bytes the ranks sent to each other over the whole run: ${(tally.bytes / 2 ** 30).toFixed(2)} GiB; of it, through sockets (socketMb: bytes each worker process wrote through system calls, /proc/<pid>/io wchar, its ws links and stderr included; shm slot payloads are memory copies, not writes): ${end.writtenMb.map((mb, rank) => (mb - start.writtenMb[rank]).toFixed(1)).join(' and ')} MB. Wall ${wallS.toFixed(0)} s. /dev/shm seqpar entries before the cluster: ${shmBefore}.`,
      ],
      extra: { tally, start, end, samples, shmBefore, shmAfterClose, wallS },
    });
    if (tally.wrong || tally.generationsDiffer) process.exitCode = 1;
  } finally {
    await cluster.close();
    await rm(dir, { recursive: true, force: true });
  }
}
