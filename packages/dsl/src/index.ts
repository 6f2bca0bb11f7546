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
export { Serdes } from './serdes.js';
export { murmur2, toPositive, defaultPartition } from './murmur2.js';
export type {
  StreamRecord,
  RecordMetadata,
  PunctuationType,
  Punctuator,
  Cancellable,
  ProcessorContext,
  Processor,
  ProcessorSupplier,
  Change,
} from './processor.js';
export { StreamsBuilder } from './streamsBuilder.js';
export type { ConsumedOptions, TableOptions, GlobalTableOptions } from './streamsBuilder.js';
export { GlobalKTable } from './globalKTable.js';
export { KStream, BranchedKStream } from './kStream.js';
export type { Named, ToOptions, RepartitionOptions, MaterializedOptions, GroupedOptions, ProcessOptions, DedupeOptions } from './kStream.js';
export { KTable } from './kTable.js';
export { KGroupedStream } from './kGroupedStream.js';
export { KGroupedTable } from './kGroupedTable.js';
export { Stores } from './storeSpecs.js';
export type { KeyValueStoreOptions, WindowStoreOptions, SessionStoreOptions } from './storeSpecs.js';
export { Topology, TopologyDescription, topicName } from './topology.js';
export type { TopologyNode, Subtopology, InternalTopic, PartitionPlan } from './topology.js';
export type { NodeDef, SourceNodeDef, ProcessorNodeDef, SinkNodeDef, TopicRef, StreamPartitioner, RepartitionTopicDef, TimestampExtractor, GlobalTableDef } from './graph.js';
export { TimeWindows, SlidingWindows, SessionWindows, JoinWindows, Suppressed } from './windows.js';
export type { WindowCloseSuppressed, TimeLimitSuppressed } from './windows.js';
export { BufferConfig } from './timeLimitSuppress.js';
export type { BufferFullStrategy } from './timeLimitSuppress.js';
export { TimeWindowedKStream, SessionWindowedKStream } from './windowedKStream.js';
export { CogroupedKStream, TimeWindowedCogroupedKStream, SessionWindowedCogroupedKStream } from './cogroupedKStream.js';
export type { EmitStrategy, WindowedMaterializedOptions } from './windowedKStream.js';
export type { JoinedOptions, StreamJoinedOptions, TableJoinedOptions, GlobalJoinedOptions } from './joins.js';
export type { ForeignKeyJoinedOptions } from './fkJoin.js';
export { timestampedSerde } from './timestamped.js';
export type { ValueAndTimestamp } from './timestamped.js';
export { versionedSerde, versionedView } from './versioned.js';
export type { VersionedKeyValueStore, VersionedRecord, VersionedPutResult, VersionedTableOptions, Versions } from './versioned.js';
