/**
 * The one error hierarchy shared by every Vltava package.
 *
 * Every error says what happened and what to do next. `retriable` tells the runtime whether the
 * operation may succeed if retried; `taskId` names the task (`<subtopology>_<partition>`) when
 * one is involved; `cause` carries the underlying error.
 */
export interface StreamsErrorOptions {
  readonly retriable?: boolean;
  readonly taskId?: string;
  readonly cause?: unknown;
}

export class StreamsError extends Error {
  readonly retriable: boolean;
  readonly taskId: string | undefined;

  constructor(message: string, options: StreamsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retriable = options.retriable ?? false;
    this.taskId = options.taskId;
  }
}

/** The topology is invalid: the message says which operator and how to fix it. Never retriable. */
export class TopologyError extends StreamsError {
  constructor(message: string, options: Omit<StreamsErrorOptions, 'retriable'> = {}) {
    super(message, { ...options, retriable: false });
  }
}

/** Where a record was when processing failed. */
export interface RecordLocation {
  readonly node: string;
  readonly topic: string | undefined;
  readonly partition: number | undefined;
  readonly offset: number | undefined;
}

/**
 * User code (or a serde) threw while processing a record. Names the processor node and the
 * input record's topic, partition and offset.
 */
export class ProcessingError extends StreamsError {
  readonly node: string;
  readonly topic: string | undefined;
  readonly partition: number | undefined;
  readonly offset: number | undefined;

  constructor(message: string, location: RecordLocation, options: StreamsErrorOptions = {}) {
    super(message, options);
    this.node = location.node;
    this.topic = location.topic;
    this.partition = location.partition;
    this.offset = location.offset;
  }
}

/** A state store failed (I/O, corruption, misuse such as an unknown store name). */
export class StateStoreError extends StreamsError {}

/**
 * This instance no longer owns the task (its producer was fenced, or the group moved the task).
 * Close the task without committing and rejoin the group.
 */
export class TaskMigratedError extends StreamsError {
  constructor(message: string, options: Omit<StreamsErrorOptions, 'retriable'> = {}) {
    super(message, { ...options, retriable: true });
  }
}

/** The task's local state cannot be trusted: wipe it and restore from the changelog. */
export class TaskCorruptedError extends StreamsError {
  constructor(message: string, options: Omit<StreamsErrorOptions, 'retriable'> = {}) {
    super(message, { ...options, retriable: true });
  }
}

/** A configuration value is missing, invalid, or contradicts another one. Never retriable. */
export class ConfigError extends StreamsError {
  constructor(message: string, options: Omit<StreamsErrorOptions, 'retriable'> = {}) {
    super(message, { ...options, retriable: false });
  }
}
