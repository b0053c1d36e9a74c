export * from './topology.js';
export * from './redis.js';
export * from './durable.js';
export * from './scripts.js';
