/**
 * Every attention strategy seqpar runs, by the name users give: @seqpar/strategies implements each one, the
 * planner and the simulator price each one.
 */
export const STRATEGY_NAMES = ['single', 'ring', 'striped', 'zigzag', 'token-ring', 'ulysses', 'usp'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];
