import { describe, expect, it } from 'vitest';
import { needsNetem, planNetns, shapeCommands } from '../src/netns-plan.js';

describe('planNetns', () => {
  const plan = planNetns({ workers: 2, id: '123-ab', shape: { rateMbit: 100 } });

  it('gives every endpoint its own namespace and address, joined to a bridge in a hub namespace', () => {
    expect(plan.hub).toBe('seqpar-123-ab-hub');
    expect(plan.coordinatorNs).toBe('seqpar-123-ab-c');
    expect(plan.workerNs).toEqual(['seqpar-123-ab-w0', 'seqpar-123-ab-w1']);
    expect(plan.coordinatorAddress).toBe('10.213.0.1');
    expect(plan.workerAddresses).toEqual(['10.213.0.2', '10.213.0.3']);
    const lines = plan.setup.map((argv) => argv.join(' '));
    expect(lines.slice(0, 3)).toEqual(['ip netns add seqpar-123-ab-hub', 'ip -n seqpar-123-ab-hub link add br0 type bridge', 'ip -n seqpar-123-ab-hub link set br0 up']);
    expect(lines).toContain('ip link add name w1 netns seqpar-123-ab-hub type veth peer name eth0 netns seqpar-123-ab-w1');
    expect(lines).toContain('ip -n seqpar-123-ab-hub link set w1 master br0');
    expect(lines).toContain('ip -n seqpar-123-ab-w1 addr add 10.213.0.3/24 dev eth0');
    // Nothing is created in the caller's namespace: every link command names a namespace.
    for (const argv of plan.setup) expect(argv.some((arg) => arg.startsWith('seqpar-123-ab-'))).toBe(true);
    // A namespace exists before anything is put into it.
    for (const ns of [plan.coordinatorNs, ...plan.workerNs]) {
      const created = lines.indexOf(`ip netns add ${ns}`);
      expect(created).toBeGreaterThan(0);
      expect(lines.findIndex((line) => line.includes(ns) && !line.startsWith('ip netns add'))).toBeGreaterThan(created);
    }
  });

  it('shapes only what workers send, and tears down the endpoints before the hub', () => {
    const tc = plan.setup.filter((argv) => argv[0] === 'tc').map((argv) => argv.join(' '));
    expect(tc).toEqual([
      'tc -n seqpar-123-ab-w0 qdisc add dev eth0 root tbf rate 100mbit burst 125000 latency 200ms',
      'tc -n seqpar-123-ab-w1 qdisc add dev eth0 root tbf rate 100mbit burst 125000 latency 200ms',
    ]);
    expect(plan.teardown.map((argv) => argv.join(' '))).toEqual([
      'ip netns del seqpar-123-ab-w0',
      'ip netns del seqpar-123-ab-w1',
      'ip netns del seqpar-123-ab-c',
      'ip netns del seqpar-123-ab-hub',
    ]);
  });

  it('uses netem for a delay (with jitter and rate), tbf for a rate alone, nothing for no shape', () => {
    expect(shapeCommands('n', 'eth0', { delayMs: 2, jitterMs: 0.5, rateMbit: 1000 })).toEqual([
      ['tc', '-n', 'n', 'qdisc', 'add', 'dev', 'eth0', 'root', 'netem', 'delay', '2ms', '0.5ms', 'rate', '1000mbit'],
    ]);
    expect(shapeCommands('n', 'eth0', { rateMbit: 1 })[0]).toContain('65536'); // at least one GSO segment of burst
    expect(shapeCommands('n', 'eth0', undefined)).toEqual([]);
    expect(shapeCommands('n', 'eth0', {})).toEqual([]);
    expect(needsNetem([{ rateMbit: 5 }, { delayMs: 1 }])).toBe(true);
    expect(needsNetem({ rateMbit: 5 })).toBe(false);
  });

  it('refuses bad plans with usage errors', () => {
    expect(() => planNetns({ workers: 0, id: '1-a' })).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
    expect(() => planNetns({ workers: 254, id: '1-a' })).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
    expect(() => planNetns({ workers: 2, id: 'x; rm -rf /' })).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
    expect(() => planNetns({ workers: 2, id: '1-a', shape: [{}] })).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
    expect(() => shapeCommands('n', 'eth0', { rateMbit: 0 })).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
    expect(() => shapeCommands('n', 'eth0', { delayMs: -1 })).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
    expect(() => shapeCommands('n', 'eth0', { jitterMs: 1 })).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
  });
});
