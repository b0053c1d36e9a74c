export * from './topology.js';
export * from './redis.js';
export * from './durable.js';
export * from './routing.js';
export * from './ports.js';
export * from './managed-process.js';
export * from './redis-server.js';
export * from './relay-process.js';
