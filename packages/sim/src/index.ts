export * from './min-heap.js';
export * from './project.js';
export * from './sim-trace.js';
export * from './simulate.js';
