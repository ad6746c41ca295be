import { createPartial, UsageError, zigzagChunks, type LayoutKind, type PartialAttention, type Span } from '@seqpar/core';
import { attendSequence } from './attend-sequence.js';
import { gatherHeads, scatterHeads, type GatheredHeads } from './head-exchange.js';
import type { RankContext, RankInput } from './rank-context.js';
import type { StrategyOptions } from './registry.js';
import { groupContext } from './rank-group.js';
import { ZIGZAG_LAYOUT, zigzagAttention } from './zigzag.js';

/**
 * USP keeps the zigzag layout over all N ranks: rank r holds chunks r and 2N-1-r of 2N. The U ranks of a Ulysses
 * group g (ranks gU..gU+U-1) then hold together exactly chunks g and 2R-1-g of the same sequence cut in 2R, the
 * zigzag share of ring rank g among R = N/U: the all-to-all inside the group hands each member that share for
 * its heads, and the ring across the groups is plain zigzag.
 */
export const USP_LAYOUT: LayoutKind = ZIGZAG_LAYOUT;

/** USP splits heads over the U ranks of a group and the ranks into N/U groups: U must divide the KV heads and N. */
export function checkUsp(hq: number, hkv: number, degree: number, { ulyssesDegree, documents, window }: StrategyOptions): void {
  // Each group holds one plain zigzag share of the ring over groups; a document-dealt layout would not split so.
  if (documents !== undefined || window !== undefined) throw new UsageError('usp does not take documents or a window: use zigzag, token-ring or ulysses');
  if (ulyssesDegree === undefined) throw new UsageError('usp needs a ulysses degree (--ulysses-degree U, or ulyssesDegree: U): the ranks of each all-to-all group');
  const u = ulyssesDegree;
  if (!Number.isInteger(u) || u < 1 || u > hkv || hkv % u !== 0 || hq % u !== 0 || degree % u !== 0) {
    throw new UsageError(`usp needs the ulysses degree (${u}) to divide the kv heads (${hkv}), query heads (${hq}) and the worker count (${degree})`);
  }
}

/**
 * USP, Ulysses x ring (Fang & Zhao, 2024, "USP: A Unified Sequence Parallelism Approach"; yunchang's
 * LongContextAttention): the N = U x R ranks form R Ulysses groups of U consecutive ranks (one host's fast links).
 * An all-to-all inside each group re-shards its rows from "my rows, all heads" to "the group's rows, 1/U of the
 * heads"; the members holding the same heads in every group (ranks u, U+u, 2U+u, ...) run a zigzag ring over
 * the R groups (the slow links between hosts); the second all-to-all brings out and lse home. U = N is Ulysses
 * (one group, a ring of one) and U = 1 the zigzag ring (groups of one), computing the same blocks.
 */
export async function uspAttention(ctx: RankContext, input: RankInput): Promise<PartialAttention> {
  const { rank, worldSize: n } = ctx;
  const [rows, hq] = input.q.shape as [number, number];
  checkUsp(hq, input.k.shape[1]!, n, input);
  const u = input.ulyssesDegree!;
  const [group, member, rings] = [Math.floor(rank / u), rank % u, n / u];
  const heads = groupContext(
    ctx,
    range(u, (m) => group * u + m),
    `usp-group${group}`,
  );
  const ring = groupContext(
    ctx,
    range(rings, (g) => g * u + member),
    `usp-ring${member}`,
  );

  // Gathered rows are the group's ring share in ring order: chunk g of 2R, then chunk 2R-1-g.
  const share = zigzagChunks(input.seq, rings, group);
  const firstRows = share.first.end - share.first.start;
  const gathered = (span: Span): Span => {
    const offset = span.start < share.first.end ? -share.first.start : firstRows - share.second.start;
    return { start: span.start + offset, end: span.end + offset };
  };
  const placement = (m: number): Span[] => {
    const { first, second } = zigzagChunks(input.seq, n, group * u + m);
    return [first, second].filter((span) => span.end > span.start).map(gathered);
  };

  const mine = await scatterHeads(heads, input, firstRows + share.second.end - share.second.start, placement);
  const local = rings === 1 ? await attendGathered(heads, mine, input.causal) : await zigzagAttention(ring, { ...mine, seq: input.seq, causal: input.causal });
  return gatherHeads(heads, local, placement, rows, hq);
}

/** A ring of one is Ulysses: the group gathered the whole sequence in order, attended as ulysses.ts does (bit for bit). */
async function attendGathered(ctx: RankContext, gathered: GatheredHeads, causal: boolean): Promise<PartialAttention> {
  const [seq, heads, dim] = gathered.q.shape as [number, number, number];
  const local = createPartial(seq, heads, dim);
  await attendSequence(ctx, local, { causal }, gathered.q, gathered.k, gathered.v, 'heads');
  return local;
}

const range = (length: number, at: (i: number) => number): number[] => Array.from({ length }, (_, i) => at(i));
