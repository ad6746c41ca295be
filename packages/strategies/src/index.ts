export * from './decode.js';
export { planPieces } from './block-attention.js';
export type { BlockRule, PlannedBlock, RingWorld } from './pass-kv.js';
export * from './rank-context.js';
export * from './registry.js';
export * from './run-inproc.js';
export * from './shard-request.js';
