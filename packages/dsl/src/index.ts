export type { Serde } from './serde.js';
export type * from './stores.js';
export type * from './collector.js';
