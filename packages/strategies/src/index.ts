export * from './decode.js';
export * from './rank-context.js';
export * from './registry.js';
export * from './run-inproc.js';
export * from './shard-request.js';
