import { describe, expect, it } from 'vitest';
import { choosePlan } from '../src/choose-plan.js';
import { estimateCost } from '../src/cost-model.js';
import { describeSchedule } from '../src/describe-schedule.js';
import { DECLARED_PROFILES } from '../src/profiles.js';
import { routeOf } from '../src/topology.js';
import { defaultUlyssesDegree, uspDegrees, uspRefusal } from '../src/usp-schedule.js';
import type { AttentionWorkload } from '../src/workload.js';

const llama70b = (seq: number): AttentionWorkload => ({ seq, prefix: 0, causal: true, heads: 64, kvHeads: 8, headDim: 128, bytesPerElement: 2 });
const twoHosts = DECLARED_PROFILES['h100-2x8-ib']!;

describe('usp schedule', () => {
  it('per rank: U-1 head frames, R-1 ring hops to the same member of the next group, U-1 result frames', () => {
    const [n, u] = [16, 8];
    const schedule = describeSchedule('usp', llama70b(65536), n, u);
    for (let rank = 0; rank < n; rank++) {
      const sent = schedule.messages.filter((m) => m.from === rank);
      const hops = sent.filter((m) => m.label.startsWith('kv'));
      expect(hops).toHaveLength(n / u - 1);
      for (const hop of hops) expect(hop.to).toBe((rank + u) % n);
      expect(sent.filter((m) => m.label.startsWith('heads'))).toHaveLength(u - 1);
      expect(sent.filter((m) => m.label.startsWith('results'))).toHaveLength(u - 1);
      // The all-to-alls stay inside the group, on one host.
      for (const m of sent.filter((m) => !m.label.startsWith('kv'))) expect(Math.floor(m.to / u)).toBe(Math.floor(rank / u));
    }
    // A hop carries a group share (S/R rows) of 1/U of the kv heads: as many bytes as a zigzag hop over N ranks.
    const hop = schedule.messages.find((m) => m.label.startsWith('kv'))!;
    expect(hop.bytes).toBe(describeSchedule('zigzag', llama70b(65536), n).messages[0]!.bytes);
  });

  it('refuses U beyond the kv heads or not dividing the ranks; the default fills one host', () => {
    expect(uspRefusal(llama70b(1024), 16, 16)).toMatch(/exceeds the 8 kv heads/);
    expect(uspRefusal(llama70b(1024), 12, 8)).toMatch(/does not divide the 12 ranks/);
    expect(uspDegrees(llama70b(1024), 16)).toEqual([1, 2, 4, 8]);
    expect(defaultUlyssesDegree(llama70b(1024), 16, twoHosts)).toBe(8);
    expect(defaultUlyssesDegree(llama70b(1024), 16, DECLARED_PROFILES['local-2x2'])).toBe(2);
  });

  it('routes messages between hosts over the inter-host link, within a host over NVLink', () => {
    expect(routeOf(twoHosts, 0, 7)).toMatchObject({ bandwidth: twoHosts.linkBandwidth, egress: 'out 0', ingress: 'in 7' });
    expect(routeOf(twoHosts, 7, 8)).toMatchObject({ bandwidth: twoHosts.topology!.interHost.bandwidth, egress: 'out 7 between hosts', ingress: 'in 8 between hosts' });
  });

  it('hides the slow hop where zigzag cannot: the planner picks usp on two hosts at 16k, and a ring over one host costs the same on either profile', () => {
    // At 16k a zigzag step over 16 ranks computes for less time than its 4 MiB hop takes over InfiniBand.
    const w = llama70b(16384);
    const plan = choosePlan(w, twoHosts, { maxWorkers: 16, fixedDegree: true });
    expect(plan).toMatchObject({ strategy: 'usp', degree: 16 });
    expect(plan.ulyssesDegree).toBeGreaterThan(1);
    const zigzag = (profile: typeof twoHosts) => estimateCost(describeSchedule('zigzag', w, 16), profile).exposedCommMs;
    expect(zigzag(twoHosts)).toBeGreaterThan(zigzag(DECLARED_PROFILES['h100-nvlink']!));
    const oneHost = (profile: typeof twoHosts) => estimateCost(describeSchedule('zigzag', w, 8), profile).predictedMs;
    expect(oneHost(twoHosts)).toBeCloseTo(oneHost(DECLARED_PROFILES['h100-nvlink']!), 9);
  });
});
