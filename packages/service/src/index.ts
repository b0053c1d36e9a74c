export * from './topology.js';
export * from './redis.js';
export * from './durable.js';
export * from './scripts.js';
export * from './store-call.js';
export * from './metrics.js';
