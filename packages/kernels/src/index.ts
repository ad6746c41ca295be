export * from './attention-graph.js';
export * from './attention-kernel.js';
export * from './compute-protocol.js';
export * from './compute-thread.js';
export * from './fused-attention-graph.js';
export * from './graph-builder.js';
export * from './onnx-schema.js';
export * from './session-options.js';
