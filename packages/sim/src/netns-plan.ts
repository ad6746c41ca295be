import { UsageError } from '@seqpar/core';

/**
 * Shape of the traffic a worker sends: tc netem for delay (and its rate), tc tbf for a rate alone (tbf is in far
 * more kernels than netem).
 */
export interface LinkShape {
  /** One-way delay added to every packet leaving the worker, ms. */
  readonly delayMs?: number;
  /** Jitter around `delayMs` (netem's uniform variation), ms. */
  readonly jitterMs?: number;
  /** Cap on the worker's outgoing rate, Mbit/s. */
  readonly rateMbit?: number;
}

export interface NetnsPlanOptions {
  readonly workers: number;
  /** Unique per run and starting with the creator's pid, so a sweep can tell an orphan (netns-cluster.ts). */
  readonly id: string;
  /** One shape for every worker, or one per rank. */
  readonly shape?: LinkShape | readonly LinkShape[];
}

/**
 * Every endpoint gets a namespace of its own; a hub namespace holds the bridge they all hang off, so nothing is
 * created in the caller's namespace and deleting the namespaces removes every link:
 *
 *      seqpar-<id>-c (coordinator, 10.213.0.1)        seqpar-<id>-w<r> (worker r, 10.213.0.<r+2>)
 *            eth0                                            eth0   <- tc shapes what the worker sends
 *             |  veth                                         |  veth
 *      -------c---------------- br0 -------------------------w<r>------   seqpar-<id>-hub
 */
export interface NetnsPlan {
  readonly hub: string;
  readonly coordinatorNs: string;
  readonly workerNs: string[];
  readonly coordinatorAddress: string;
  readonly workerAddresses: string[];
  /** argv of each command, in order; the first of them creates the hub. */
  readonly setup: string[][];
  /** `ip netns del` of every namespace, endpoints first; run after their processes are gone. */
  readonly teardown: string[][];
}

export const NETNS_PREFIX = 'seqpar-';
const SUBNET = '10.213.0';
/** .1 is the coordinator, workers from .2: a /24 leaves room for 253 workers. */
const MAX_WORKERS = 253;

export function planNetns(options: NetnsPlanOptions): NetnsPlan {
  const { workers, id } = options;
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) throw new UsageError(`netns workers must be 1..${MAX_WORKERS}, got ${workers}`);
  if (!/^\d+-[a-z0-9]+$/.test(id)) throw new UsageError(`netns id must be '<pid>-<tag>' in lower case, got '${id}'`);
  const shapes = Array.isArray(options.shape) ? (options.shape as readonly LinkShape[]) : Array.from({ length: workers }, () => options.shape as LinkShape | undefined);
  if (shapes.length !== workers) throw new UsageError(`one link shape per worker expected (${workers}), got ${shapes.length}`);
  const hub = `${NETNS_PREFIX}${id}-hub`;
  const coordinatorNs = `${NETNS_PREFIX}${id}-c`;
  const workerNs = Array.from({ length: workers }, (_, rank) => `${NETNS_PREFIX}${id}-w${rank}`);
  const coordinatorAddress = `${SUBNET}.1`;
  const workerAddresses = workerNs.map((_, rank) => `${SUBNET}.${rank + 2}`);
  const setup = [
    ['ip', 'netns', 'add', hub],
    ['ip', '-n', hub, 'link', 'add', 'br0', 'type', 'bridge'],
    ['ip', '-n', hub, 'link', 'set', 'br0', 'up'],
    ...endpoint(hub, coordinatorNs, 'c', coordinatorAddress),
    ...workerNs.flatMap((ns, rank) => [...endpoint(hub, ns, `w${rank}`, workerAddresses[rank]!), ...shapeCommands(ns, 'eth0', shapes[rank])]),
  ];
  const teardown = [...workerNs, coordinatorNs, hub].map((ns) => ['ip', 'netns', 'del', ns]);
  return { hub, coordinatorNs, workerNs, coordinatorAddress, workerAddresses, setup, teardown };
}

/** A namespace joined to the hub's bridge by a veth pair created directly in both namespaces. */
function endpoint(hub: string, ns: string, port: string, address: string): string[][] {
  return [
    ['ip', 'netns', 'add', ns],
    ['ip', 'link', 'add', 'name', port, 'netns', hub, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns],
    ['ip', '-n', hub, 'link', 'set', port, 'master', 'br0'],
    ['ip', '-n', hub, 'link', 'set', port, 'up'],
    ['ip', '-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0'],
    ['ip', '-n', ns, 'link', 'set', 'eth0', 'up'],
    ['ip', '-n', ns, 'link', 'set', 'lo', 'up'],
  ];
}

/** The tc command that shapes `dev` in `ns`, or none for an unshaped link. */
export function shapeCommands(ns: string, dev: string, shape: LinkShape | undefined): string[][] {
  if (!shape) return [];
  const { delayMs = 0, jitterMs = 0, rateMbit } = shape;
  for (const [name, value] of Object.entries({ delayMs, jitterMs, rateMbit: rateMbit ?? 1 })) {
    if (!Number.isFinite(value) || value < 0 || (name === 'rateMbit' && value === 0))
      throw new UsageError(`link ${name} must be a non-negative number (rate positive), got ${value}`);
  }
  if (jitterMs > 0 && delayMs === 0) throw new UsageError('link jitter needs a delay to vary around');
  const tc = ['tc', '-n', ns, 'qdisc', 'add', 'dev', dev, 'root'];
  if (delayMs > 0) {
    const rate = rateMbit === undefined ? [] : ['rate', `${rateMbit}mbit`];
    return [[...tc, 'netem', 'delay', `${delayMs}ms`, ...(jitterMs > 0 ? [`${jitterMs}ms`] : []), ...rate]];
  }
  if (rateMbit === undefined) return [];
  // A token bucket of 10 ms at the rate (at least 64 KiB, one GSO segment), queueing up to 200 ms before drops.
  const burstBytes = Math.max(65_536, Math.ceil((rateMbit * 1e6) / 8 / 100));
  return [[...tc, 'tbf', 'rate', `${rateMbit}mbit`, 'burst', String(burstBytes), 'latency', '200ms']];
}

/** Whether a shape needs tc netem (a delay), which some kernels lack (CONFIG_NET_SCH_NETEM). */
export function needsNetem(shape: LinkShape | readonly LinkShape[] | undefined): boolean {
  const shapes = Array.isArray(shape) ? (shape as readonly LinkShape[]) : [shape as LinkShape | undefined];
  return shapes.some((s) => (s?.delayMs ?? 0) > 0);
}
