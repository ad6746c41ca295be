import type { LayoutKind, PartialAttention, StrategyName, SequenceMask } from '@seqpar/core';
import type { BlockRule } from './pass-kv.js';
import type { RankContext, RankInput } from './rank-context.js';
import { RING_LAYOUT, ringAttention, ringBlocks } from './ring.js';
import { singleAttention } from './single.js';
import { STRIPED_LAYOUT, stripedAttention, stripedBlocks } from './striped.js';
import { TOKEN_RING_LAYOUT, tokenRingAttention } from './token-ring.js';
import { checkUlyssesDegree, ULYSSES_LAYOUT, ulyssesAttention } from './ulysses.js';
import { checkUsp, USP_LAYOUT, uspAttention } from './usp.js';
import { ZIGZAG_LAYOUT, zigzagAttention, zigzagBlocks } from './zigzag.js';

// The list of names lives in core (the planner and the simulator need it without the strategies); existing
// importers keep reading it from here.
export { STRATEGY_NAMES, type StrategyName } from '@seqpar/core';

/** What a request may ask of a strategy beyond its shape: its mask, and usp's group size. */
export interface StrategyOptions extends Partial<SequenceMask> {
  /** usp: ranks per all-to-all group (U of N = U x R). */
  readonly ulyssesDegree?: number;
}

export interface Strategy {
  readonly name: StrategyName;
  /** How tokens are spread over ranks before the strategy runs (and gathered after). */
  readonly layout: LayoutKind;
  /** Throws a UsageError when the strategy cannot run this shape on `degree` ranks with these options. */
  readonly check: (hq: number, hkv: number, degree: number, options?: StrategyOptions) => void;
  /** Runs on every rank; returns that rank's out and lse for its local queries. */
  readonly run: (ctx: RankContext, input: RankInput) => Promise<PartialAttention>;
}

const anyShape = (): void => undefined;

export const STRATEGIES: Readonly<Record<StrategyName, Strategy>> = {
  single: { name: 'single', layout: 'contiguous', check: anyShape, run: singleAttention },
  ring: { name: 'ring', layout: RING_LAYOUT, check: anyShape, run: ringAttention },
  striped: { name: 'striped', layout: STRIPED_LAYOUT, check: anyShape, run: stripedAttention },
  zigzag: { name: 'zigzag', layout: ZIGZAG_LAYOUT, check: anyShape, run: zigzagAttention },
  'token-ring': { name: 'token-ring', layout: TOKEN_RING_LAYOUT, check: anyShape, run: tokenRingAttention },
  ulysses: { name: 'ulysses', layout: ULYSSES_LAYOUT, check: checkUlyssesDegree, run: ulyssesAttention },
  usp: { name: 'usp', layout: USP_LAYOUT, check: (hq, hkv, degree, options) => checkUsp(hq, hkv, degree, options ?? {}), run: uspAttention },
};

/**
 * Each layout's pass-KV block rule, defined in its strategy's file. TokenRing runs zigzag's; the planner prices
 * the ring family's and TokenRing's schedules with these.
 */
export const BLOCK_RULES: Readonly<Record<LayoutKind, BlockRule>> = {
  contiguous: ringBlocks,
  striped: stripedBlocks,
  zigzag: zigzagBlocks,
};
