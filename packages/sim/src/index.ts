export * from './min-heap.js';
export * from './project.js';
export * from './sim-trace.js';
export * from './simulate.js';
export * from './netns-plan.js';
export * from './netns-support.js';
export * from './netns-cluster.js';
