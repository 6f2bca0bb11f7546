// First, so that the kafkajs fixes are applied before anything loads kafkajs (docs/kafkajs-notes.md).
export {
  applyKafkajsFixes,
  checkKafkajsFixes,
  requireKafkajsFixes,
  guardAdmin,
  KafkajsFixMissingError,
  KafkaMetadataRaceError,
  type KafkajsFixReport,
  type KafkajsFixCheck,
  type KafkajsFixOptions,
} from './kafka/kafkajsFixes.js';
export { KafkaStreams, StreamsEventNames, exitOnError, type StreamsState, type StreamsEvents, type StreamsMetrics, type StreamsHealth, type StreamsMetadata, type KeyQueryMetadata } from './kafkaStreams.js';
export { MAX_STREAM_THREADS } from './config.js';
export type { ThreadMetadata } from './streamThreads.js';
export { TASK_TRANSITIONS, IllegalTaskTransitionError, type TaskState, type TaskMover, type OffsetReset } from './kafka/activeTask.js';
export { ProductionError, type TopicLimits } from './kafka/productionGuard.js';
export {
  resolveConfig,
  consoleLogger,
  type LogLevel,
  type StreamsConfig,
  type ResolvedConfig,
  type ProcessingGuarantee,
  type ProcessingExceptionHandler,
  type ProductionExceptionHandler,
  type UncaughtExceptionResponse,
  type CommitPoint,
  type Logger,
} from './config.js';
export { isFencingError, kafkaErrorType, errorChain, toTaskError } from './kafka/kafkaErrors.js';
export { sendOffsetsWithRetry, isRetriableCoordinatorError, type RetryOptions } from './kafka/sendOffsets.js';
export { KafkaChangelogReader, type KafkaChangelogReaderOptions } from './kafka/kafkaChangelogReader.js';
export { assignTasks, taskAssignor, TASK_ASSIGNOR_NAME, type TaskRef } from './kafka/taskAssignor.js';
