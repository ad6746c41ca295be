// Small helpers the benchmarks share.
import { readFileSync } from 'node:fs';

/** The value after `name` in the command line's arguments, or `fallback` when it is absent. */
export function option(args, name, fallback) {
  const at = args.indexOf(name);
  return at >= 0 && args[at + 1] !== undefined ? args[at + 1] : fallback;
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

/** CPU time (user + system, all threads) process `pid` has used, in ms; Linux counts it in 10 ms clock ticks. */
export function processCpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * One attention request on `cluster` (worker processes), with the CPU time each worker used over it
 * (`workerCpuMs`, by rank): a rank whose compute took longer than its CPU time waited for a core.
 */
export async function attentionWithCpu(cluster, [q, k, v], options) {
  const pids = cluster.pids();
  const before = pids.map(processCpuMs);
  const { stats } = await cluster.attention(q, k, v, options);
  return { ...stats, workerCpuMs: pids.map((pid, rank) => processCpuMs(pid) - before[rank]) };
}
