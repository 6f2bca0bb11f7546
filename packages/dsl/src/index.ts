export type { Serde } from './serde.js';
export type * from './stores.js';
export type * from './collector.js';
export {
  StreamsError,
  TopologyError,
  ProcessingError,
  StateStoreError,
  TaskMigratedError,
  TaskCorruptedError,
  ConfigError,
} from './errors.js';
export type { StreamsErrorOptions, RecordLocation } from './errors.js';
