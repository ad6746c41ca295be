export * from './attention-types.js';
export * from './chrome-trace.js';
export * from './errors.js';
export * from './random.js';
export * from './rank-recorder.js';
export * from './reference-attention.js';
export * from './runnable-entry.js';
export * from './tensor.js';
