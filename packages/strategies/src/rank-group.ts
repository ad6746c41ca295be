import { SeqparError } from '@seqpar/core';
import type { Transport } from '@seqpar/transport';
import type { RankContext } from './rank-context.js';

/**
 * The context of a rank within a group of the request's ranks (`members`, by global rank): ranks are numbered
 * 0..members.length-1 as the group sees them, and sends and receives go to the members' global ranks. `name`
 * keeps the group's tags and trace flows apart from other groups'. Counters stay the request's.
 */
export function groupContext(ctx: RankContext, members: readonly number[], name: string): RankContext {
  const rank = members.indexOf(ctx.rank);
  if (rank < 0) throw new SeqparError('ERR_INTERNAL', `rank ${ctx.rank} is not in group ${name} (${members.join(', ')})`);
  const transport: Transport = {
    rank,
    worldSize: members.length,
    kind: ctx.transport.kind,
    send: (to, tag, header, payload, options) => ctx.transport.send(members[to]!, tag, header, payload, options),
    recv: (from, tag, options) => ctx.transport.recv(members[from]!, tag, options),
    stats: () => ctx.transport.stats(),
    close: async () => undefined,
  };
  return { ...ctx, rank, worldSize: members.length, transport, tagPrefix: `${ctx.tagPrefix}${name}/` };
}
