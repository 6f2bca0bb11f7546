export { StreamTask, taskIdOf, parseTaskId } from './streamTask.js';
export type {
  StreamTaskOptions,
  TaskStoreAccess,
  InputRecord,
  DeserializationExceptionHandler,
  ProcessingExceptionHandler,
  TaskLogger,
  TaskMetrics,
  RecordDroppedEvent,
} from './streamTask.js';
