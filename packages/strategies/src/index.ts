export * from './decode.js';
export * from './decode-lanes.js';
export { planPieces, visiblePairs } from './block-attention.js';
export type { BlockRule } from './pass-kv.js';
export { visibleBlocks, type PlannedBlock, type RingWorld } from './visible-blocks.js';
export * from './rank-context.js';
export * from './registry.js';
export * from './run-inproc.js';
export * from './shard-request.js';
