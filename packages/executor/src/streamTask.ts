/**
 * The one task executor, shared by the Kafka runtime and the TopologyTestDriver. Kafka-free:
 * it never imports kafkajs. A task is one sub-topology x one partition number.
 *
 * Per record (synchronous, no promise): deserialize at the source node, advance stream time,
 * push the record through the processor nodes depth-first, serialize at sink nodes and hand
 * the bytes to the RecordCollector, then fire due stream-time punctuators.
 */
import {
  ConfigError,
  ProcessingError,
  StateStoreError,
  StreamsError,
  topicName,
  type Cancellable,
  type CollectedRecord,
  type Processor,
  type ProcessorContext,
  type PunctuationType,
  type Punctuator,
  type RecordCollector,
  type RecordHeaders,
  type RecordMetadata,
  type Serde,
  type StateStore,
  type StreamPartitioner,
  type StreamRecord,
  type Subtopology,
  type Topology,
  type TopologyNode,
} from '@vltava/dsl';
import { match } from 'ts-pattern';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** The part of `@vltava/state`'s TaskStores the executor uses. */
export interface TaskStoreAccess {
  getStore<S extends StateStore = StateStore>(name: string): S;
  flush(): void;
}

/** A raw record from an input topic partition. */
export interface InputRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly timestamp: number;
  readonly headers?: RecordHeaders | undefined;
}

/**
 * What to do with a record whose key or value cannot be deserialized:
 * - `'fail'` (default): throw a ProcessingError; the task stops.
 * - `'log-and-continue'`: log a warning, count it, skip the record.
 * - `{ deadLetterTopic }`: send the raw record, with `vltava.error.*` headers, to that topic and skip it.
 */
export type DeserializationExceptionHandler = 'fail' | 'log-and-continue' | { readonly deadLetterTopic: string };

/**
 * What to do when user code throws while processing a record (the same option in the test driver
 * and the runtime):
 * - `'fail'` (default): the task stops (the runtime goes to ERROR; nothing of the transaction commits);
 * - `'log-and-continue'`: log a warning, count it, skip the record;
 * - `{ deadLetterTopic }`: send the raw input record, with `vltava.error.*` headers, to that topic
 *   (inside the same transaction in the runtime) and continue with the next record.
 */
export type ProcessingExceptionHandler = 'fail' | 'log-and-continue' | { readonly deadLetterTopic: string };

export interface TaskLogger {
  warn(message: string, meta?: Readonly<Record<string, unknown>>): void;
}

export interface StreamTaskOptions {
  readonly topology: Topology;
  readonly subtopology: number;
  readonly partition: number;
  readonly applicationId: string;
  /** The task's opened stores (`openTaskStores`/`openTaskStoresSync` of `@vltava/state`). */
  readonly stores: TaskStoreAccess;
  readonly collector: RecordCollector;
  /** The wall clock for `currentSystemTimeMs` and wall-clock punctuators (default Date.now). */
  readonly wallClock?: () => number;
  readonly deserializationExceptionHandler?: DeserializationExceptionHandler;
  /**
   * What to do when user code throws while processing a record: `'fail'` (default) throws the
   * ProcessingError and the task stops; `'log-and-continue'` logs it, counts it and goes on with the
   * next record (outputs the record produced before the failure are kept, as in Kafka Streams).
   */
  readonly processingExceptionHandler?: ProcessingExceptionHandler;
  readonly logger?: TaskLogger;
  /** Partition count of an output topic; needed only by sinks with a custom partitioner. */
  readonly partitionsFor?: (topic: string) => number | undefined;
  /**
   * Called when an operator drops a record on purpose (late record for a closed window, null key in
   * an aggregation or join, duplicate, ...). The event is built only when this is set.
   */
  readonly onRecordDropped?: (event: RecordDroppedEvent) => void;
  /**
   * The instance's global stores (`topology.globalStoreSpecs()`, kept up to date by a
   * GlobalStateTask). Required when the sub-topology joins a global table.
   */
  readonly globalStores?: TaskStoreAccess;
}

/** A record an operator dropped on purpose (`task.record.dropped`). */
export interface RecordDroppedEvent {
  readonly taskId: string;
  /** The processor that dropped it. */
  readonly node: string;
  readonly reason: string;
  /** Where the input record came from (undefined inside a punctuator). */
  readonly topic: string | undefined;
  readonly partition: number | undefined;
  readonly offset: number | undefined;
  /** Timestamp of the record being processed. */
  readonly timestamp: number;
  /** The operator's stream time, as the task sees it. */
  readonly streamTime: number;
}

export interface TaskMetrics {
  /** Records taken from input topics (including skipped ones). */
  readonly processed: number;
  /** Records dropped on purpose by operators, e.g. null keys in aggregations, duplicates in dedupe. */
  readonly dropped: number;
  readonly droppedByReason: ReadonlyMap<string, number>;
  /** Records skipped or dead-lettered by the deserialization handler. */
  readonly deserializationErrors: number;
  /** Records whose processing failed and was skipped by processingExceptionHandler 'log-and-continue'. */
  readonly processingErrors: number;
  readonly punctuations: number;
}

export function taskIdOf(subtopology: number, partition: number): string {
  return `${subtopology}_${partition}`;
}

export function parseTaskId(taskId: string): { subtopology: number; partition: number } {
  const m = /^(\d+)_(\d+)$/.exec(taskId);
  if (!m) throw new ConfigError(`"${taskId}" is not a task id; task ids look like <subtopology>_<partition>, e.g. "0_3".`);
  return { subtopology: Number(m[1]), partition: Number(m[2]) };
}

const NO_METADATA = undefined;

interface Schedule {
  readonly node: RuntimeNode;
  readonly interval: number;
  readonly fn: Punctuator;
  next: number;
  cancelled: boolean;
}

class RuntimeNode implements ProcessorContext<any, any> {
  children: RuntimeNode[] = [];
  childByName = new Map<string, RuntimeNode>();
  processor!: Processor<any, any, any, any>;
  private only: RuntimeNode | undefined;
  readonly storeNames: ReadonlySet<string>;

  constructor(readonly def: TopologyNode, private readonly task: StreamTask) {
    this.storeNames = new Set(def.kind === 'processor' ? def.stores : []);
  }

  get applicationId(): string {
    return this.task.applicationId;
  }
  get taskId(): string {
    return this.task.id;
  }
  get partition(): number {
    return this.task.partition;
  }

  link(children: RuntimeNode[]): void {
    this.children = children;
    this.only = children.length === 1 ? children[0] : undefined;
    for (const c of children) this.childByName.set(c.def.name, c);
  }

  /** Runs this node's processor on one record, wrapping user exceptions. */
  process(record: StreamRecord<any, any>): void {
    try {
      this.processor.process(record);
    } catch (err) {
      throw this.task.wrapError(err, this.def.name);
    }
  }

  forward(record: StreamRecord<any, any>, childName?: string): void {
    if (childName !== undefined) {
      const child = this.childByName.get(childName);
      if (child === undefined) {
        throw new ProcessingError(
          `Processor "${this.def.name}" forwarded to unknown child "${childName}"; its children are [${[...this.childByName.keys()].join(', ')}].`,
          this.task.location(this.def.name),
          { taskId: this.task.id },
        );
      }
      child.process(record);
      return;
    }
    const only = this.only;
    if (only !== undefined) {
      only.process(record);
      return;
    }
    const children = this.children;
    for (let i = 0; i < children.length; i++) children[i]!.process(record);
  }

  getStateStore<S extends StateStore = StateStore>(name: string): S {
    if (this.task.isGlobalStore(name) && this.storeNames.has(name)) {
      const g = this.task.globalStores;
      if (g === undefined) {
        throw new StateStoreError(`Processor "${this.def.name}" uses global store "${name}", but the task was created without globalStores. Pass the instance's global stores (GlobalStateTask) in StreamTaskOptions.globalStores.`, {
          taskId: this.task.id,
        });
      }
      return g.getStore<S>(name);
    }
    if (!this.storeNames.has(name)) {
      throw new StateStoreError(
        `Processor "${this.def.name}" is not connected to store "${name}". Pass it in process(supplier, { stores: ['${name}'] }) and add it with builder.addStateStore(...).`,
        { taskId: this.task.id },
      );
    }
    return this.task.stores.getStore<S>(name);
  }

  recordMetadata(): RecordMetadata | undefined {
    return this.task.recordMetadata();
  }

  currentStreamTimeMs(): number {
    return this.task.streamTime;
  }

  currentSystemTimeMs(): number {
    return this.task.wallClock();
  }

  schedule(intervalMs: number, type: PunctuationType, punctuator: Punctuator): Cancellable {
    return this.task.schedule(this, intervalMs, type, punctuator);
  }

  recordDropped(reason: string): void {
    this.task.recordDropped(reason, this.def.name);
  }
}

class SinkProcessor implements Processor<any, any> {
  private ctx!: RuntimeNode;
  constructor(
    private readonly topic: string,
    private readonly keySerde: Serde<any>,
    private readonly valueSerde: Serde<any>,
    private readonly partitioner: StreamPartitioner<any, any> | undefined,
    private readonly collector: RecordCollector,
    private readonly partitionsFor: ((topic: string) => number | undefined) | undefined,
  ) {}
  init(ctx: RuntimeNode): void {
    this.ctx = ctx;
  }
  process(r: StreamRecord<any, any>): void {
    const topic = this.topic;
    const key = r.key === null || r.key === undefined ? null : this.keySerde.serialize(r.key, topic);
    const value = r.value === null || r.value === undefined ? null : this.valueSerde.serialize(r.value, topic);
    if (this.partitioner === undefined) {
      // One object shape for every record (monomorphic collectors).
      this.collector.send({ topic, key, value, timestamp: r.timestamp, headers: r.headers });
      return;
    }
    const n = this.partitionsFor?.(topic);
    if (n === undefined) {
      throw new ConfigError(`Sink "${this.ctx.def.name}" has a custom partitioner but the partition count of "${topic}" is unknown; create the topic first.`);
    }
    const partition = this.partitioner(r.key, r.value, n);
    const rec: CollectedRecord = { topic, key, value, timestamp: r.timestamp, ...(partition === undefined ? {} : { partition }), ...(r.headers ? { headers: r.headers } : {}) };
    this.collector.send(rec);
  }
}

interface SourceEntry {
  readonly topic: string;
  readonly node: RuntimeNode;
  readonly keySerde: Serde<any>;
  readonly valueSerde: Serde<any>;
  readonly timestampExtractor: ((key: any, value: any, recordTimestamp: number) => number) | undefined;
  /** Next offset to commit (last processed + 1); -1 before the first record. */
  nextOffset: number;
  /** Records buffered by addRecords, not yet processed. */
  queue: InputRecord[];
  head: number;
}

export class StreamTask {
  readonly id: string;
  readonly applicationId: string;
  readonly partition: number;
  readonly subtopology: Subtopology;
  readonly stores: TaskStoreAccess;
  readonly globalStores: TaskStoreAccess | undefined;
  readonly wallClock: () => number;
  /** The largest timestamp processed so far; -1 before the first record. */
  streamTime = -1;
  /** True once a record was processed or a punctuator fired since the last `markCommitted()`. */
  commitNeeded = false;

  private readonly nodes: RuntimeNode[];
  private readonly sources = new Map<string, SourceEntry>();
  private readonly collector: RecordCollector;
  private readonly handler: DeserializationExceptionHandler;
  private readonly onProcessingError: ProcessingExceptionHandler;
  private readonly logger: TaskLogger | undefined;
  private readonly onDropped: ((event: RecordDroppedEvent) => void) | undefined;
  private readonly globalNames: ReadonlySet<string>;
  private streamSchedules: Schedule[] = [];
  private wallSchedules: Schedule[] = [];
  private current: InputRecord | undefined;
  private currentTimestamp = 0;
  private closed = false;
  private nProcessed = 0;
  private nDropped = 0;
  private readonly dropReasons = new Map<string, number>();
  private nDeserErrors = 0;
  private nProcErrors = 0;
  private nPunctuations = 0;

  constructor(opts: StreamTaskOptions) {
    const sub = opts.topology.subtopologies[opts.subtopology];
    if (sub === undefined) {
      throw new ConfigError(`Sub-topology ${opts.subtopology} does not exist; the topology has ${opts.topology.subtopologies.length}.`);
    }
    this.subtopology = sub;
    this.applicationId = opts.applicationId;
    this.partition = opts.partition;
    this.id = taskIdOf(sub.id, opts.partition);
    this.stores = opts.stores;
    this.globalStores = opts.globalStores;
    this.globalNames = new Set(opts.topology.globalTables.map((g) => g.name));
    this.collector = opts.collector;
    this.wallClock = opts.wallClock ?? Date.now;
    this.handler = opts.deserializationExceptionHandler ?? 'fail';
    this.onProcessingError = opts.processingExceptionHandler ?? 'fail';
    this.logger = opts.logger;
    this.onDropped = opts.onRecordDropped;

    this.nodes = sub.nodes.map((def) => new RuntimeNode(def, this));
    const byName = new Map(this.nodes.map((n) => [n.def.name, n]));
    for (const n of this.nodes) {
      n.link(n.def.children.map((c) => byName.get(c)!));
      n.processor = match(n.def)
        .with({ kind: 'source' }, (def): Processor<any, any> => {
          const topic = topicName(def.topic, this.applicationId);
          this.sources.set(topic, { topic, node: n, keySerde: def.keySerde, valueSerde: def.valueSerde, timestampExtractor: def.timestampExtractor, nextOffset: -1, queue: [], head: 0 });
          return { process: (r) => n.forward(r) };
        })
        .with({ kind: 'processor' }, (def) => def.supplier())
        .with({ kind: 'sink' }, (def) =>
          new SinkProcessor(topicName(def.topic, this.applicationId), def.keySerde, def.valueSerde, def.partitioner, this.collector, opts.partitionsFor),
        )
        .exhaustive();
    }
    for (const n of this.nodes) {
      try {
        n.processor.init?.(n);
      } catch (err) {
        throw this.wrapError(err, n.def.name, 'init');
      }
    }
  }

  /** @internal */
  isGlobalStore(name: string): boolean {
    return this.globalNames.has(name);
  }

  /** Input topics of this task (full names). */
  inputTopics(): string[] {
    return [...this.sources.keys()];
  }

  /**
   * Buffers fetched records of this task's input partitions (one queue per input topic). Use with
   * `processNext()`, which picks across topics by timestamp, as Kafka Streams does.
   */
  addRecords(records: readonly InputRecord[]): void {
    for (const r of records) {
      const source = this.sources.get(r.topic);
      if (source === undefined) {
        throw new ConfigError(`Task ${this.id} does not read topic "${r.topic}"; it reads [${this.inputTopics().join(', ')}].`, { taskId: this.id });
      }
      source.queue.push(r);
    }
  }

  /** Buffered records of one input topic not yet processed. */
  bufferedFor(topic: string): number {
    const s = this.sources.get(topic);
    return s === undefined ? 0 : s.queue.length - s.head;
  }

  /** The offset of the first buffered, unprocessed record of `topic`, if any. */
  nextBufferedOffset(topic: string): number | undefined {
    const s = this.sources.get(topic);
    return s === undefined ? undefined : s.queue[s.head]?.offset;
  }

  /** Buffered records not yet processed. */
  bufferedRecords(): number {
    let n = 0;
    for (const s of this.sources.values()) n += s.queue.length - s.head;
    return n;
  }

  /**
   * Processes the buffered record with the smallest timestamp among the heads of the input
   * queues (ties: the first topic). Returns false if nothing is buffered.
   */
  processNext(): boolean {
    let best: SourceEntry | undefined;
    let bestTs = Infinity;
    for (const s of this.sources.values()) {
      const r = s.queue[s.head];
      if (r !== undefined && r.timestamp < bestTs) {
        best = s;
        bestTs = r.timestamp;
      }
    }
    if (best === undefined) return false;
    const r = best.queue[best.head++]!;
    if (best.head === best.queue.length) {
      best.queue = [];
      best.head = 0;
    }
    this.process(r);
    return true;
  }

  /** Drops buffered records (after an aborted commit the runtime re-fetches from committed offsets). */
  clearBuffers(): void {
    for (const s of this.sources.values()) {
      s.queue = [];
      s.head = 0;
    }
  }

  /** Processes one input record synchronously. Throws ProcessingError if user code fails. */
  process(record: InputRecord): void {
    if (this.closed) throw new StreamsError(`Task ${this.id} is closed.`, { taskId: this.id });
    const source = this.sources.get(record.topic);
    if (source === undefined) {
      throw new ConfigError(`Task ${this.id} does not read topic "${record.topic}"; it reads [${this.inputTopics().join(', ')}].`, { taskId: this.id });
    }
    this.nProcessed++;
    this.commitNeeded = true;
    source.nextOffset = record.offset + 1;
    let key: unknown = null;
    let value: unknown = null;
    let part = 'key';
    try {
      if (record.key !== null) key = source.keySerde.deserialize(record.key, record.topic);
      part = 'value';
      if (record.value !== null) value = source.valueSerde.deserialize(record.value, record.topic);
    } catch (err) {
      this.onDeserializationError(record, source, part, err);
      return;
    }
    let timestamp = record.timestamp;
    if (source.timestampExtractor !== undefined) {
      this.current = record;
      try {
        timestamp = source.timestampExtractor(key, value, record.timestamp);
      } catch (err) {
        throw this.wrapError(err, source.node.def.name);
      } finally {
        this.current = undefined;
      }
    }
    if (!(timestamp >= 0) || !Number.isFinite(timestamp)) {
      this.recordDropped('invalid timestamp', source.node.def.name);
      this.logger?.warn(`Skipping record ${record.topic}/${record.partition}@${record.offset}: invalid timestamp ${String(timestamp)}`, { taskId: this.id });
      return;
    }
    if (timestamp > this.streamTime) this.streamTime = timestamp;
    this.current = record;
    this.currentTimestamp = timestamp;
    try {
      // A source node only forwards (its processor cannot throw): skip its processor call.
      source.node.forward({ key, value, timestamp, headers: record.headers });
    } catch (err) {
      // Only failures of user code are skippable; store, config and fencing errors always stop the task.
      const handler = this.onProcessingError;
      if (handler === 'fail' || !(err instanceof ProcessingError)) throw err;
      this.nProcErrors++;
      if (typeof handler === 'object') {
        const cause = err.cause instanceof Error ? err.cause : err;
        this.sendToDeadLetter(handler.deadLetterTopic, record, err.node, err.message.slice(0, 1000), cause.name);
      } else this.logger?.warn(`Skipping record ${record.topic}/${record.partition}@${record.offset}: ${err.message}`, {
        taskId: this.id,
        node: err.node,
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
      });
    } finally {
      this.current = undefined;
    }
    if (this.streamSchedules.length !== 0) this.punctuateStreamTime();
  }

  private onDeserializationError(record: InputRecord, source: SourceEntry, part: string, err: unknown): void {
    const serde = part === 'key' ? source.keySerde.name : source.valueSerde.name;
    const where = `${record.topic}/${record.partition}@${record.offset}`;
    const reason = err instanceof Error ? err.message : String(err);
    const handler = this.handler;
    if (handler === 'fail') {
      throw new ProcessingError(
        `Could not deserialize the ${part} of record ${where} with serde "${serde}": ${reason}. Fix the producer or the serde, or set deserializationExceptionHandler to 'log-and-continue' or { deadLetterTopic } to skip bad records.`,
        { node: source.node.def.name, topic: record.topic, partition: record.partition, offset: record.offset },
        { taskId: this.id, cause: err },
      );
    }
    this.nDeserErrors++;
    if (handler === 'log-and-continue') {
      this.logger?.warn(`Skipping record ${where}: cannot deserialize its ${part} with serde "${serde}": ${reason}`, {
        taskId: this.id,
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
      });
      return;
    }
    this.sendToDeadLetter(handler.deadLetterTopic, record, source.node.def.name, `cannot deserialize ${part} with serde "${serde}": ${reason}`);
  }

  /** The raw input record to a dead-letter topic, with `vltava.error.*` headers (both error handlers). */
  private sendToDeadLetter(topic: string, record: InputRecord, node: string, message: string, errorClass?: string): void {
    this.collector.send({
      topic,
      key: record.key,
      value: record.value,
      timestamp: record.timestamp,
      headers: {
        ...record.headers,
        'vltava.error.message': message,
        ...(errorClass === undefined ? {} : { 'vltava.error.class': errorClass }),
        'vltava.error.node': node,
        'vltava.error.topic': record.topic,
        'vltava.error.partition': String(record.partition),
        'vltava.error.offset': String(record.offset),
      },
    });
  }

  /** @internal */
  wrapError(err: unknown, node: string, phase?: string): StreamsError {
    if (err instanceof StreamsError) return err;
    const loc = this.location(node);
    const where = this.current ? `record ${loc.topic}/${loc.partition}@${loc.offset}` : phase === 'init' ? 'init' : 'a punctuation';
    const reason = err instanceof Error ? err.message : String(err);
    return new ProcessingError(
      `Processor "${node}" in task ${this.id} threw on ${where}: ${reason}. The task stops; fix the processor or handle the error inside it.`,
      loc,
      { taskId: this.id, cause: err },
    );
  }

  /** @internal */
  location(node: string): { node: string; topic: string | undefined; partition: number | undefined; offset: number | undefined } {
    const c = this.current;
    return { node, topic: c?.topic, partition: c?.partition, offset: c?.offset };
  }

  /** @internal */
  recordMetadata(): RecordMetadata | undefined {
    const c = this.current;
    return c === undefined ? NO_METADATA : { topic: c.topic, partition: c.partition, offset: c.offset };
  }

  /** Timestamp of the record being processed (or of the last punctuation): stamp changelog records with it. */
  currentRecordTimestamp(): number {
    return this.currentTimestamp;
  }

  /** @internal */
  recordDropped(reason: string, node?: string): void {
    this.nDropped++;
    this.dropReasons.set(reason, (this.dropReasons.get(reason) ?? 0) + 1);
    const listener = this.onDropped;
    if (listener !== undefined) {
      const c = this.current;
      listener({
        taskId: this.id,
        node: node ?? '',
        reason,
        topic: c?.topic,
        partition: c?.partition,
        offset: c?.offset,
        timestamp: this.currentTimestamp,
        streamTime: this.streamTime,
      });
    }
  }

  /** @internal */
  schedule(node: RuntimeNode, intervalMs: number, type: PunctuationType, fn: Punctuator): Cancellable {
    if (!Number.isFinite(intervalMs) || intervalMs < 1) {
      throw new ConfigError(`Processor "${node.def.name}": schedule interval must be at least 1 ms, got ${String(intervalMs)}.`, { taskId: this.id });
    }
    // Stream time: first fires as soon as there is data (aligned to 0, like Kafka Streams).
    // Wall clock: first fires one interval from now.
    const s: Schedule = { node, interval: intervalMs, fn, next: type === 'stream-time' ? 0 : this.wallClock() + intervalMs, cancelled: false };
    if (type === 'stream-time') this.streamSchedules.push(s);
    else this.wallSchedules.push(s);
    return {
      cancel: () => {
        s.cancelled = true;
        if (type === 'stream-time') this.streamSchedules = this.streamSchedules.filter((x) => x !== s);
        else this.wallSchedules = this.wallSchedules.filter((x) => x !== s);
      },
    };
  }

  private fire(s: Schedule, now: number): void {
    // Skip missed intervals: fire once, then schedule the next interval after `now`.
    s.next = s.next + s.interval * (Math.floor((now - s.next) / s.interval) + 1);
    this.nPunctuations++;
    this.commitNeeded = true;
    this.currentTimestamp = now;
    try {
      s.fn(now);
    } catch (err) {
      throw this.wrapError(err, s.node.def.name, 'punctuate');
    }
  }

  private punctuateStreamTime(): void {
    const now = this.streamTime;
    for (const s of this.streamSchedules.slice()) {
      if (!s.cancelled && now >= s.next) this.fire(s, now);
    }
  }

  /** Fires the wall-clock punctuators that are due at `now` (default: the task's wall clock). Returns how many fired. */
  punctuateWallClock(now: number = this.wallClock()): number {
    let fired = 0;
    for (const s of this.wallSchedules.slice()) {
      if (!s.cancelled && now >= s.next) {
        this.fire(s, now);
        fired++;
      }
    }
    return fired;
  }

  /** The earliest wall-clock time at which a punctuator is due (Infinity if none): for the runtime's timer. */
  nextWallClockPunctuation(): number {
    let next = Infinity;
    for (const s of this.wallSchedules) if (s.next < next) next = s.next;
    return next;
  }

  /** Next offset to commit (last processed + 1) per input topic of this task's partition. */
  committableOffsets(): ReadonlyMap<string, number> {
    const out = new Map<string, number>();
    for (const s of this.sources.values()) if (s.nextOffset >= 0) out.set(s.topic, s.nextOffset);
    return out;
  }

  /**
   * Before a commit: flushes the stores' record caches, so every changelog record of this
   * commit reaches the collector. Returns the input offsets to commit.
   */
  prepareCommit(): ReadonlyMap<string, number> {
    this.stores.flush();
    return this.committableOffsets();
  }

  /** After a successful commit. */
  markCommitted(): void {
    this.commitNeeded = false;
  }

  metrics(): TaskMetrics {
    return {
      processed: this.nProcessed,
      dropped: this.nDropped,
      droppedByReason: new Map(this.dropReasons),
      deserializationErrors: this.nDeserErrors,
      processingErrors: this.nProcErrors,
      punctuations: this.nPunctuations,
    };
  }

  /** Closes the processors (not the stores: their owner closes them after commit or abort). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.streamSchedules = [];
    this.wallSchedules = [];
    let first: unknown;
    for (const n of this.nodes) {
      try {
        n.processor.close?.();
      } catch (err) {
        first ??= this.wrapError(err, n.def.name, 'close');
      }
    }
    if (first !== undefined) throw first;
  }
}
