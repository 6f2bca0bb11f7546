export { StreamTask, taskIdOf, parseTaskId } from './streamTask.js';
export { GlobalStateTask } from './globalStateTask.js';
export type { GlobalStateTaskOptions } from './globalStateTask.js';
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
