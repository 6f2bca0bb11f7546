export { StreamTask, taskIdOf, parseTaskId } from './streamTask.js';
export type {
  StreamTaskOptions,
  TaskStoreAccess,
  InputRecord,
  DeserializationExceptionHandler,
  TaskLogger,
  TaskMetrics,
} from './streamTask.js';
