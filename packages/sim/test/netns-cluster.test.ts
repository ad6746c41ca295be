import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { referenceAttention } from '@seqpar/core';
import { describe, expect, it } from 'vitest';
import { runNetnsCluster } from '../src/netns-cluster.js';
import { isAlive, netnsSupport, seqparNamespaces } from '../src/netns-support.js';

const CLI = join(import.meta.dirname, '..', '..', '..', 'apps', 'cli', 'bin', 'seqpar.js');
const support = await netnsSupport();
const skipReason = !support.ok ? support.reason : !existsSync(join(CLI, '..', '..', 'dist', 'main.js')) ? 'the seqpar CLI is not built (npm run build)' : undefined;
if (skipReason) console.warn(`multi-host (netns) tests skipped: ${skipReason}`);
else if (!support.netem) console.warn('netns link-delay test skipped: this kernel has no tc netem (CONFIG_NET_SCH_NETEM); rate shaping (tbf) is tested');

const seqpar = [process.execPath, CLI];
const ours = async () => (await seqparNamespaces()).filter((name) => name.startsWith(`seqpar-${process.pid}-`));

describe.skipIf(skipReason !== undefined)('multi-host mode in network namespaces', () => {
  it('serves exact attention over real TCP between namespaces through rate-limited links, then leaves nothing behind', async () => {
    const rateMbit = 4;
    const r = await runNetnsCluster({
      workers: 2,
      seqpar,
      // Striped: under a causal mask every rank's KV is needed by the other (causal ring sends rank 0's only).
      request: { seq: 1024, heads: 4, kvHeads: 2, headDim: 32, strategy: 'striped', causal: true, seed: 7 },
      shape: { rateMbit },
    });
    const reference = referenceAttention(r.q, r.k, r.v, { kind: 'causal-inclusive' });
    expect(r.out.data.reduce((worst, x, i) => Math.max(worst, Math.abs(x - reference.out[i]!)), 0)).toBeLessThan(1e-4);
    expect(r.lse.data.reduce((worst, x, i) => Math.max(worst, Math.abs(x - reference.lse[i]!)), 0)).toBeLessThan(1e-4);
    expect(r.summary).toMatchObject({ strategy: 'striped', workers: 2, transport: 'ws' });

    // Each rank's KV block crossed its own veth, and the token bucket held it to the rate (less its burst).
    const ranks = r.summary.ranks as { bytesSent: number }[];
    r.links.forEach((link, rank) => expect(link.txBytes).toBeGreaterThan(ranks[rank]!.bytesSent));
    const shapedMs = ((ranks[0]!.bytesSent - 65_536) * 8) / (rateMbit * 1000);
    expect(r.summary.wallMs).toBeGreaterThan(0.8 * shapedMs);

    // One merged trace: a process per rank, every hop's arrow forward in time.
    const names = r.trace.traceEvents.filter((e) => e.name === 'process_name').map((e) => e.args!.name);
    expect(names).toEqual(['rank 0', 'rank 1']);
    const starts = new Map(r.trace.traceEvents.filter((e) => e.ph === 's').map((e) => [e.id!, e.ts]));
    const ends = r.trace.traceEvents.filter((e) => e.ph === 'f');
    expect(ends.length).toBeGreaterThanOrEqual(2);
    for (const end of ends) expect(end.ts).toBeGreaterThanOrEqual(starts.get(end.id!)! - 1e-3);

    expect(r.pids.filter(isAlive)).toEqual([]);
    expect(await ours()).toEqual([]);
  });

  it('tears everything down when the request fails', async () => {
    // Ulysses cannot split one KV head over two workers: the coordinator refuses, the client exits 2.
    const failing = runNetnsCluster({ workers: 2, seqpar, request: { seq: 64, heads: 2, kvHeads: 1, headDim: 16, strategy: 'ulysses' } });
    await expect(failing).rejects.toThrow(/client failed \(exit 2\): seqpar: ERR_USAGE/);
    expect(await ours()).toEqual([]);
  });

  it.skipIf(!support.ok || !support.netem)('adds the link delay to a request', async () => {
    const r = await runNetnsCluster({ workers: 2, seqpar, request: { seq: 64, heads: 2, kvHeads: 1, headDim: 16, strategy: 'ring' }, shape: { delayMs: 50 } });
    expect(r.summary.wallMs).toBeGreaterThan(50);
    expect(await ours()).toEqual([]);
  });
});
