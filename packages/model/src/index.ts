export * from './config.js';
export * from './dtype.js';
export * from './load-model.js';
export * from './safetensors.js';
export * from './tiny-model.js';
export * from './tokenizer.js';
export * from './weights.js';
