import type { LayoutKind, PartialAttention } from '@seqpar/core';
import type { RankContext, RankInput } from './rank-context.js';
import { ringAttention } from './ring.js';
import { singleAttention } from './single.js';
import { stripedAttention } from './striped.js';
import { TOKEN_RING_LAYOUT, tokenRingAttention } from './token-ring.js';
import { checkUlyssesDegree, ULYSSES_LAYOUT, ulyssesAttention } from './ulysses.js';
import { zigzagAttention } from './zigzag.js';

export const STRATEGY_NAMES = ['single', 'ring', 'striped', 'zigzag', 'token-ring', 'ulysses'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export interface Strategy {
  readonly name: StrategyName;
  /** How tokens are spread over ranks before the strategy runs (and gathered after). */
  readonly layout: LayoutKind;
  /** Throws a UsageError when the strategy cannot run this shape on `degree` ranks. */
  readonly check: (hq: number, hkv: number, degree: number) => void;
  /** Runs on every rank; returns that rank's out and lse for its local queries. */
  readonly run: (ctx: RankContext, input: RankInput) => Promise<PartialAttention>;
}

const anyShape = (): void => undefined;

export const STRATEGIES: Readonly<Record<StrategyName, Strategy>> = {
  single: { name: 'single', layout: 'contiguous', check: anyShape, run: singleAttention },
  ring: { name: 'ring', layout: 'contiguous', check: anyShape, run: ringAttention },
  striped: { name: 'striped', layout: 'striped', check: anyShape, run: stripedAttention },
  zigzag: { name: 'zigzag', layout: 'zigzag', check: anyShape, run: zigzagAttention },
  'token-ring': { name: 'token-ring', layout: TOKEN_RING_LAYOUT, check: anyShape, run: tokenRingAttention },
  ulysses: { name: 'ulysses', layout: ULYSSES_LAYOUT, check: checkUlyssesDegree, run: ulyssesAttention },
};
