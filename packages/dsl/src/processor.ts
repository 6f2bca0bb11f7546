/**
 * The processor API: what `KStream.process` runs, and what every built-in operator is made of.
 * All methods are synchronous; a processor must never await on the per-record path.
 */
import type { RecordHeaders } from './collector.js';
import type { StateStore } from './stores.js';

/**
 * One record flowing through a topology. A Kafka null key or value arrives as `null`
 * (the static types say `K`/`V`; declare `K | null` if your topic has null keys).
 * Records are plain immutable objects: derive new ones with spread, `{ ...record, value }`.
 */
export interface StreamRecord<K, V> {
  readonly key: K;
  readonly value: V;
  /** Event time in epoch milliseconds. */
  readonly timestamp: number;
  readonly headers?: RecordHeaders | undefined;
}

/** Where the record being processed came from. Undefined inside a punctuator. */
export interface RecordMetadata {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

/**
 * `stream-time` punctuators fire as record timestamps advance the task's stream time (the
 * largest timestamp seen); `wall-clock` punctuators fire as the system clock advances.
 */
export type PunctuationType = 'stream-time' | 'wall-clock';

export type Punctuator = (timestamp: number) => void;

export interface Cancellable {
  cancel(): void;
}

export interface ProcessorContext<KOut = never, VOut = never> {
  readonly applicationId: string;
  /** `<subtopology>_<partition>` */
  readonly taskId: string;
  /** The partition this task processes. */
  readonly partition: number;
  /** Sends a record to all children, or only to the child named `childName`. */
  forward(record: StreamRecord<KOut, VOut>, childName?: string): void;
  /** A store connected to this processor (`process(..., { stores: [name] })`). */
  getStateStore<S extends StateStore = StateStore>(name: string): S;
  recordMetadata(): RecordMetadata | undefined;
  /** The largest record timestamp this task has processed (-1 before the first record). */
  currentStreamTimeMs(): number;
  /** The (injected) wall clock. */
  currentSystemTimeMs(): number;
  /**
   * Calls `punctuator` every `intervalMs` of stream time or wall-clock time. Stream-time
   * punctuators fire at most once per processed record, with the current stream time.
   */
  schedule(intervalMs: number, type: PunctuationType, punctuator: Punctuator): Cancellable;
  /** Counts a record the processor dropped on purpose (e.g. a null key in an aggregation). */
  recordDropped(reason: string): void;
}

export interface Processor<KIn, VIn, KOut = never, VOut = never> {
  init?(context: ProcessorContext<KOut, VOut>): void;
  process(record: StreamRecord<KIn, VIn>): void;
  close?(): void;
}

/** Returns a new processor instance; called once per task. */
export type ProcessorSupplier<KIn, VIn, KOut = never, VOut = never> = () => Processor<KIn, VIn, KOut, VOut>;

/** The value type flowing between KTable nodes: the new value and the value it replaced. */
export interface Change<V> {
  readonly newValue: V | null;
  readonly oldValue: V | null;
}
