/**
 * One task owned by this instance: its producer, its stores and its StreamTask (the shared executor).
 * The Kafka adapter around the executor: it feeds fetched records in, commits through commitProtocol.ts,
 * and knows how to start (fence, read offsets, restore) and how to close clean or dirty.
 */
import { Mutex } from './mutex.js';
import { defaultPartition, type CollectedRecord, type RecordCollector, type StateStore, type Topology } from '@vltava/dsl';
import { openTaskStores, type RestoreListener, type TaskStores } from '@vltava/state';
import type { Admin, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { ResolvedConfig } from '../config.js';
import { StreamTask, parseTaskId, type InputRecord, type RecordDroppedEvent, type TaskStoreAccess } from '@vltava/executor';
import { commitTask, type CommitResult } from './commitProtocol.js';
import { screenRecords, type TopicLimits } from './productionGuard.js';
import { KafkaChangelogReader } from './kafkaChangelogReader.js';

export interface ActiveTaskDeps {
  readonly config: ResolvedConfig;
  readonly topology: Topology;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly partitionsFor: (topic: string) => number | undefined;
  readonly restoreListener: RestoreListener;
  /** At-least-once: commit offsets through the group consumer. */
  readonly commitConsumerOffsets: (offsets: { topic: string; partition: number; offset: string }[]) => Promise<void>;
  /** The instance's global stores, when the topology has global tables. */
  readonly globalStores: TaskStoreAccess | undefined;
  /** A record an operator dropped on purpose (late, null key, duplicate...). */
  readonly onRecordDropped: (event: RecordDroppedEvent) => void;
  /** Called after every successful commit (interval, early, or on close). */
  readonly onCommitted: (task: ActiveTask, result: CommitResult) => void;
  /** Limits of every topic the app writes (productionGuard.ts). */
  readonly topicLimits: ReadonlyMap<string, TopicLimits>;
  /** A committed offset outside its partition, reset by autoOffsetReset at start. */
  readonly onOffsetReset: (task: ActiveTask, reset: OffsetReset) => void;
}

/**
 * THE TASK LIFECYCLE. One table says which move is allowed from which state, and who makes it.
 *
 *   created   -> restoring  (manager: the group assigned the task and the manager started it)
 *   restoring -> running    (init: producer initialised, offsets read, stores restored)
 *   running   -> suspended  (revoke / shutdown: no more processing; the final commit runs)
 *   any live  -> closed     (revoke, shutdown, a failed start or commit, fencing, a fatal error)
 *
 * Only the TaskManager creates tasks, and only for tasks in the group's current assignment; a task
 * that failed or was fenced is never restarted in place: a new instance is created by the manager
 * (and only if the group still assigns it), after the old one has released its state directory.
 */
export type TaskState = 'created' | 'restoring' | 'running' | 'suspended' | 'closed';
export type TaskMover = 'manager' | 'init' | 'revoke' | 'shutdown' | 'start-failure' | 'commit-failure' | 'fencing' | 'fatal';

export const TASK_TRANSITIONS: Readonly<Record<TaskState, Readonly<Partial<Record<TaskState, readonly TaskMover[]>>>>> = {
  created: { restoring: ['manager'], closed: ['revoke', 'shutdown', 'fatal'] },
  restoring: { running: ['init'], closed: ['revoke', 'shutdown', 'start-failure', 'fencing', 'fatal'] },
  running: { suspended: ['revoke', 'shutdown'], closed: ['revoke', 'shutdown', 'commit-failure', 'fencing', 'fatal'] },
  suspended: { closed: ['revoke', 'shutdown', 'commit-failure', 'fencing', 'fatal'] },
  closed: {},
};

/** A move the lifecycle table does not have: a bug in the runtime, never a user error. */
export class IllegalTaskTransitionError extends Error {
  constructor(taskId: string, from: TaskState, to: TaskState, by: TaskMover) {
    super(`task ${taskId}: ${from} -> ${to} by ${by} is not a legal move of the task lifecycle`);
    this.name = 'IllegalTaskTransitionError';
  }
}

/** Offset metadata committed with the input offsets: the task's stream time (Kafka Streams keeps partition time there). */
export function encodeOffsetMetadata(streamTime: number): string {
  return JSON.stringify({ v: 1, streamTime });
}

export function decodeOffsetMetadata(metadata: string | null | undefined): number | undefined {
  if (typeof metadata !== 'string' || metadata.length === 0) return undefined;
  try {
    const m = JSON.parse(metadata) as { v?: unknown; streamTime?: unknown };
    return m.v === 1 && typeof m.streamTime === 'number' && Number.isFinite(m.streamTime) ? m.streamTime : undefined;
  } catch {
    return undefined;
  }
}

/** How long a task waits for a partition the broker has data for before processing ahead of it. */
const LAGGING_WAIT_MS = 30_000;

export class TaskClosedWhileStartingError extends Error {
  constructor(taskId: string) {
    super(`task ${taskId} was closed while it was starting`);
    this.name = 'TaskClosedWhileStartingError';
  }
}

export interface OffsetReset {
  readonly topic: string;
  readonly from: number;
  readonly to: number;
  readonly policy: 'earliest' | 'latest';
}

/**
 * What one buffered output record costs on the heap besides the bytes of its key and value: the
 * record object and its two Buffer views (298 bytes measured on Node 24 with --expose-gc over
 * 200,000 records), rounded up.
 */
const RECORD_OVERHEAD_BYTES = 300;

export class ActiveTask {
  /**
   * This task's lock: processing, punctuation, commits and closing run under it, one at a time (the
   * commit protocol needs the task quiet between taking its offsets and writing its checkpoint).
   * Other tasks do not wait for it.
   */
  readonly lock = new Mutex();
  readonly id: string;
  readonly partition: number;
  readonly subtopology: number;
  private current: TaskState = 'created';
  /** Next offset to process per input topic: records below it were already committed. */
  readonly position = new Map<string, number>();
  /** Resolves when the task is ready to process (init done). */
  ready: Promise<void> = Promise.resolve();
  /** Resolves once the task released everything it holds (its state directory lock included). */
  readonly closed: Promise<void>;
  private markReleased!: () => void;
  lastCommitAt = 0;
  /** Records processed since the task started (metrics). */
  processed = 0;
  restoredRecords = 0;
  /** The input offsets of the last commit. */
  lastCommitted: ReadonlyMap<string, number> = new Map();

  private producer: Producer | undefined;
  private stores: TaskStores | undefined;
  private task: StreamTask | undefined;
  private readonly buffer: CollectedRecord[] = [];
  /** The input record handed to the executor, refilled for each record processed directly. */
  private readonly scratch: { -readonly [K in keyof InputRecord]: InputRecord[K] } = { topic: '', partition: 0, offset: 0, key: null, value: null, timestamp: 0, headers: undefined };
  /** Bytes of `buffer`: keys, values and a per-record overhead (for maxPendingBytes). */
  private bufferBytes = 0;
  private readonly changelogStores = new Map<string, string>();
  private readonly changelogTopicSet = new Set<string>();
  /** Input topics, and their end offsets as last seen (at start, then each fetch's high watermark). */
  private inputTopicList: string[] = [];
  private inputCount = 0;
  private readonly endOffsets = new Map<string, number>();
  /** Since when each input partition's buffer has been empty (timestamp-ordered processing). */
  private readonly emptySince = new Map<string, number>();
  /** Null-key records are spread round-robin, per topic. */
  private readonly roundRobin = new Map<string, number>();
  /** The position as of the last successful commit. */
  private readonly committedPosition = new Map<string, number>();

  constructor(
    taskId: string,
    private readonly deps: ActiveTaskDeps,
  ) {
    this.id = taskId;
    const { subtopology, partition } = parseTaskId(taskId);
    this.subtopology = subtopology;
    this.partition = partition;
    this.closed = new Promise((resolve) => (this.markReleased = resolve));
  }

  get state(): TaskState {
    return this.current;
  }

  /** Moves the task through the lifecycle table; an illegal move throws (a runtime bug). */
  moveTo(to: TaskState, by: TaskMover): void {
    const allowed = TASK_TRANSITIONS[this.current][to];
    if (allowed === undefined || !allowed.includes(by)) throw new IllegalTaskTransitionError(this.id, this.current, to, by);
    this.current = to;
  }

  get exactlyOnce(): boolean {
    return this.deps.config.processingGuarantee === 'exactly-once';
  }

  /** Input topics of this task. */
  inputTopics(): string[] {
    return this.task?.inputTopics() ?? [];
  }

  /** created -> restoring -> running. Only the TaskManager calls this, once. */
  start(): Promise<void> {
    this.moveTo('restoring', 'manager');
    this.ready = this.init().then(() => {
      if (this.current === 'restoring') this.moveTo('running', 'init');
    });
    return this.ready;
  }

  private async init(): Promise<void> {
    const { config, topology, kafka, admin } = this.deps;
    // 1. The producer. Under EOS, init transactions first: kafkajs' connect() does not, the first
    //    transaction() does (docs/kafkajs-notes.md). The empty abort sends nothing else.
    this.producer = this.exactlyOnce
      ? kafka.producer({
          transactionalId: `${config.applicationId}-${this.id}`,
          idempotent: true,
          maxInFlightRequests: 1,
          transactionTimeout: config.transactionTimeoutMs,
        })
      : kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
    if (this.exactlyOnce) await (await this.producer.transaction()).abort();

    // 2. Only now read the committed input offsets: a zombie's pending transaction has been finished.
    const sub = topology.subtopologies[this.subtopology]!;
    const specs = sub.stores.map((name) => topology.stores.get(name)!);
    const collector: RecordCollector = {
      send: (r) => {
        this.buffer.push(r);
        this.bufferBytes += RECORD_OVERHEAD_BYTES + (r.key?.length ?? 0) + (r.value?.length ?? 0);
      },
    };
    this.stores = await openTaskStores({
      applicationId: config.applicationId,
      taskId: this.id,
      partition: this.partition,
      specs,
      collector,
      backend: 'leveldb',
      stateDir: config.stateDir,
      cacheMaxBytes: config.cacheMaxBytesPerTask,
      recordTimestamp: () => this.task?.currentRecordTimestamp() ?? config.clock(),
    });
    for (const spec of specs) {
      if (!spec.logging) continue;
      this.changelogStores.set(this.stores.changelogTopic(spec.name), spec.name);
      this.changelogTopicSet.add(this.stores.changelogTopic(spec.name));
    }
    this.task = new StreamTask({
      topology,
      subtopology: this.subtopology,
      partition: this.partition,
      applicationId: config.applicationId,
      stores: this.stores,
      collector,
      wallClock: config.clock,
      deserializationExceptionHandler: config.deserializationExceptionHandler,
      processingExceptionHandler: config.processingExceptionHandler,
      logger: config.logger,
      partitionsFor: this.deps.partitionsFor,
      globalStores: this.deps.globalStores,
      onRecordDropped: this.deps.onRecordDropped,
    });
    this.throwIfClosed();
    const inputTopics = this.task.inputTopics();
    this.inputTopicList = inputTopics;
    this.inputCount = inputTopics.length;
    const committed = await admin.fetchOffsets({ groupId: config.applicationId, topics: inputTopics });
    let streamTime: number | undefined;
    for (const t of committed) {
      const p = t.partitions.find((x) => x.partition === this.partition);
      const offset = p === undefined ? -1 : Number(p.offset);
      const bounds = await this.bounds(t.topic);
      // The task's position is always a real offset of the partition: with no committed offset it is
      // where autoOffsetReset puts it (so a failed first commit rewinds there), and a committed offset
      // outside [log start, end] (retention deleted it, the topic was recreated) is reset by policy.
      let start = offset;
      if (offset < 0) start = config.autoOffsetReset === 'earliest' ? bounds.low : bounds.high;
      else if (offset < bounds.low || offset > bounds.high) {
        start = config.autoOffsetReset === 'earliest' ? bounds.low : bounds.high;
        this.deps.onOffsetReset(this, { topic: t.topic, from: offset, to: start, policy: config.autoOffsetReset });
      }
      this.position.set(t.topic, start);
      this.committedPosition.set(t.topic, start);
      this.endOffsets.set(t.topic, bounds.high);
      const st = decodeOffsetMetadata(p?.metadata);
      if (st !== undefined && (streamTime === undefined || st > streamTime)) streamTime = st;
    }
    // Stream time as of the last commit: late-record decisions after a restart or a move are the
    // same as in a run without one.
    if (streamTime !== undefined && streamTime > this.task.streamTime) this.task.streamTime = streamTime;
    // 3. Restore: checkpoint + 1 .. end of each changelog (read_committed).
    const reader = new KafkaChangelogReader({ kafka, admin, applicationId: config.applicationId });
    const listener = this.deps.restoreListener;
    await this.stores.restore(reader, {
      onRestoreStart: (p) => listener.onRestoreStart?.(p),
      onBatchRestored: (p) => {
        this.throwIfClosed();
        listener.onBatchRestored?.(p);
      },
      onRestoreEnd: (p) => {
        this.restoredRecords += p.restored;
        listener.onRestoreEnd?.(p);
      },
    });
    this.lastCommitAt = config.clock();
  }

  /** A task closed while it was starting stops starting (a revoked task must not restore on). */
  private throwIfClosed(): void {
    if (this.current === 'closed') throw new TaskClosedWhileStartingError(this.id);
  }

  /**
   * Log start and end offsets of this task's partition of `topic`. Right after topics are created,
   * or while leadership moves, ListOffsets answers NOT_LEADER / UNKNOWN_TOPIC and kafkajs' admin can
   * fail with a TypeError from a metadata race: retried here for a few seconds with fresh metadata.
   */
  private async bounds(topic: string): Promise<{ low: number; high: number }> {
    let backoff = 50;
    for (let attempt = 1; ; attempt++) {
      try {
        const all = await this.deps.admin.fetchTopicOffsets(topic);
        const p = all?.find((x) => x.partition === this.partition);
        if (p === undefined) throw new Error(`topic ${topic} has no partition ${this.partition} in the broker's answer`);
        return { low: Number(p.low), high: Number(p.high) };
      } catch (e) {
        if (attempt >= 10) throw e;
        this.throwIfClosed();
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 1_000);
      }
    }
  }

  /**
   * The position of `topic` fell outside its partition while running (retention deleted records
   * the task had not read yet): reset it by autoOffsetReset. Returns the new position.
   */
  async resetOutOfRange(topic: string): Promise<number> {
    const bounds = await this.bounds(topic);
    const from = this.position.get(topic) ?? -1;
    const to = this.deps.config.autoOffsetReset === 'earliest' ? bounds.low : bounds.high;
    if (from >= bounds.low && from <= bounds.high) return from; // in range now (a stale error)
    this.position.set(topic, to);
    this.deps.onOffsetReset(this, { topic, from, to, policy: this.deps.config.autoOffsetReset });
    return to;
  }

  /**
   * Takes the fetched records of one input partition and processes what may be processed,
   * synchronously; returns false if the batch was fetched from past this task's fetch position (a
   * stale fetch from before a rewind: it must be dropped, a seek to the position is pending).
   * Records below the position are skipped: kafkajs may have fetched from offsets it read before
   * this task fenced its predecessor.
   *
   * A task with one input partition processes records as they come. A task with several (a join, a
   * merge) buffers them and always processes the record with the smallest timestamp among its
   * partitions' heads, and it does not run ahead of a partition whose buffer is empty while the
   * broker has data for it (Kafka Streams' max.task.idle.ms, KIP-695): `maxTaskIdleMs` 0 waits only
   * for data known to exist, > 0 also waits that long for a partition that has none, -1 never waits.
   */
  processBatch(topic: string, fetchedOffset: number, lastOffset: number, messages: readonly KafkaMessage[], highWatermark?: number): boolean {
    const task = this.task!;
    let from = this.position.get(topic) ?? -1;
    if (fetchedOffset > from) return false;
    if (highWatermark !== undefined && Number.isFinite(highWatermark)) this.endOffsets.set(topic, highWatermark);
    const buffered = this.buffersInput();
    const records: InputRecord[] | undefined = buffered ? [] : undefined;
    // Processed at once, a record is not kept by the executor: one object per task, refilled per record.
    const scratch = this.scratch;
    for (const m of messages) {
      const offset = Number(m.offset);
      if (offset < from) continue;
      from = offset + 1;
      if (records !== undefined) {
        records.push({
          topic,
          partition: this.partition,
          offset,
          key: m.key,
          value: m.value,
          timestamp: Number(m.timestamp),
          headers: m.headers as InputRecord['headers'],
        });
        continue;
      }
      scratch.topic = topic;
      scratch.partition = this.partition;
      scratch.offset = offset;
      scratch.key = m.key;
      scratch.value = m.value;
      scratch.timestamp = Number(m.timestamp);
      scratch.headers = m.headers as InputRecord['headers'];
      // A failure of user code goes to processingExceptionHandler inside the executor (the same
      // option and behaviour as in the test driver); anything else stops the task.
      task.process(scratch);
      this.processed++;
    }
    // Past the batch's last offset, control records (transaction markers) and aborted records
    // included, as Kafka Streams commits the consumer position: the committed offset then equals the
    // end of the partition once everything is processed.
    if (lastOffset + 1 > from) from = lastOffset + 1;
    this.position.set(topic, from);
    if (records !== undefined) {
      if (records.length > 0) task.addRecords(records);
      this.drain(this.deps.config.clock());
    }
    return true;
  }

  /** Whether this task buffers its input to process it in timestamp order across partitions. */
  private buffersInput(): boolean {
    return this.inputCount > 1 && this.deps.config.maxTaskIdleMs !== -1;
  }

  /**
   * Processes buffered records, smallest timestamp first, while no input partition has to be waited
   * for. Also called periodically (idle deadlines). Returns the records processed.
   */
  drain(now: number): number {
    const task = this.task;
    if (task === undefined || !this.buffersInput() || this.current !== 'running') return 0;
    const maxIdle = this.deps.config.maxTaskIdleMs;
    let n = 0;
    for (;;) {
      if (task.bufferedRecords() === 0) break;
      let wait = false;
      for (const topic of this.inputTopicList) {
        if (task.bufferedFor(topic) > 0) {
          this.emptySince.delete(topic);
          continue;
        }
        let since = this.emptySince.get(topic);
        if (since === undefined) this.emptySince.set(topic, (since = now));
        const lagging = (this.position.get(topic) ?? 0) < (this.endOffsets.get(topic) ?? 0);
        // Data known to exist (below the last stable offset): wait for its fetch, bounded as a last
        // resort; none: wait maxTaskIdleMs.
        const limit = lagging ? Math.max(maxIdle, LAGGING_WAIT_MS) : maxIdle;
        if (now - since < limit) {
          wait = true;
          break;
        }
      }
      if (wait || !task.processNext()) break;
      n++;
    }
    this.processed += n;
    return n;
  }

  /** Buffered records of `topic` above this: the runtime pauses fetching it (buffered.records.per.partition). */
  overfull(topic: string): boolean {
    return (this.task?.bufferedFor(topic) ?? 0) > this.deps.config.bufferedRecordsPerPartition;
  }

  /** Input topics whose buffers are full, and those that drained below the limit again. */
  bufferState(): { full: string[]; drained: string[] } {
    const full: string[] = [];
    const drained: string[] = [];
    for (const topic of this.inputTopicList) (this.overfull(topic) ? full : drained).push(topic);
    return { full, drained };
  }

  /**
   * A batch kafkajs did not hand to eachBatch because it held only transaction markers or aborted
   * records: move past it, so the committed offset reaches the end of the partition.
   */
  skipFilteredBatch(topic: string, firstOffset: number, lastOffset: number): void {
    const from = this.position.get(topic);
    if (from === undefined || firstOffset > from) return;
    if (lastOffset + 1 > from) this.position.set(topic, lastOffset + 1);
  }

  /** Next offset to commit per input topic: the first buffered unprocessed record, else the fetch position. */
  private processedPosition(topic: string, fetched: number): number {
    return this.task?.nextBufferedOffset(topic) ?? fetched;
  }

  private positionMoved(): boolean {
    for (const [topic, offset] of this.position) if (this.committedPosition.get(topic) !== this.processedPosition(topic, offset)) return true;
    return false;
  }

  /** The input offsets to commit: the processed position of every input partition. */
  private committableOffsets(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [topic, offset] of this.position) out.set(topic, this.processedPosition(topic, offset));
    return out;
  }

  /** Interactive queries: a read-only view of a store's committed state (undefined before the task runs). */
  committedView<S extends StateStore>(name: string): S | undefined {
    if (this.current !== 'running' || this.stores === undefined) return undefined;
    return this.stores.committedView<S>(name);
  }

  /** murmur2 of the key (Kafka's default partitioner), round-robin for null keys. */
  private partitionFor(topic: string, key: Buffer | null): number | undefined {
    const n = this.deps.partitionsFor(topic);
    if (n === undefined || n <= 0) return undefined;
    if (key !== null) return defaultPartition(key, n);
    const next = ((this.roundRobin.get(topic) ?? this.partition) + 1) % n;
    this.roundRobin.set(topic, next);
    return next;
  }

  /** The task's stream time (-1 before any record). */
  streamTime(): number {
    return this.task?.streamTime ?? -1;
  }

  /** Fires due wall-clock punctuators. */
  punctuate(now: number): number {
    return this.task?.punctuateWallClock(now) ?? 0;
  }

  commitNeeded(): boolean {
    return this.positionMoved() || this.task?.commitNeeded === true || this.buffer.length > 0;
  }

  /** Overlays and caches, plus an estimate of the buffered output records, for the memory cap. */
  pendingBytes(): number {
    if (this.current === 'closed') return 0;
    if (this.buffer.length === 0) this.bufferBytes = 0; // taken by a commit, or dropped by an abort
    return (this.stores?.pendingBytes() ?? 0) + this.bufferBytes;
  }

  async commit(commitConsumerOffsets = this.deps.commitConsumerOffsets): Promise<CommitResult> {
    const task = this.task!;
    // The interval runs from commit start to commit start (Kafka Streams' lastCommitMs), so a commit's
    // own duration does not stretch the time a record waits for the next one.
    const startedAt = this.deps.config.clock();
    let offsets = new Map<string, number>();
    const result = await commitTask({
      taskId: this.id,
      groupId: this.deps.config.applicationId,
      exactlyOnce: this.exactlyOnce,
      producer: this.producer!,
      stores: this.stores!,
      changelogStores: this.changelogStores,
      buffer: this.buffer,
      prepare: () => {
        task.prepareCommit(); // flushes the caches into the collector
        return (offsets = this.committableOffsets());
      },
      partition: this.partition,
      metadata: encodeOffsetMetadata(task.streamTime),
      screen: (records) =>
        screenRecords(records, {
          taskId: this.id,
          handler: this.deps.config.productionExceptionHandler,
          limits: this.deps.topicLimits,
          changelogTopics: this.changelogTopicSet,
          now: this.deps.config.clock(),
          onDropped: (r, reason) =>
            this.deps.onRecordDropped({ taskId: this.id, node: 'producer', reason: `rejected by the broker: ${reason}`, topic: r.topic, partition: undefined, offset: undefined, timestamp: r.timestamp, streamTime: task.streamTime }),
        }),
      partitionFor: (topic, key) => this.partitionFor(topic, key),
      maxBatchBytes: (topic) => this.deps.topicLimits.get(topic)?.maxMessageBytes ?? 1_048_588,
      commitConsumerOffsets,
      faultInjection: this.deps.config.faultInjection,
    });
    task.markCommitted();
    this.lastCommitted = offsets;
    for (const [topic, offset] of offsets) this.committedPosition.set(topic, offset);
    this.lastCommitAt = startedAt;
    this.deps.onCommitted(this, result);
    return result;
  }

  /**
   * running -> suspended -> closed, with the final commit in between. Run it under the task's lock.
   * Throws if the commit fails (the task is then suspended: the caller closes it dirty). The
   * resources are released by closeDirty/release afterwards, outside its lock.
   */
  async closeCleanCommit(by: 'revoke' | 'shutdown'): Promise<void> {
    if (this.current !== 'running') return;
    this.moveTo('suspended', by);
    if (this.commitNeeded()) await this.commit();
    this.moveTo('closed', by);
  }

  /** -> closed, dropping uncommitted work (LevelDB untouched). Synchronous: run it under the task's lock. */
  abandon(by: TaskMover): void {
    if (this.current === 'closed') return;
    this.moveTo('closed', by);
    this.buffer.length = 0;
    try {
      this.stores?.abort();
    } catch {
      /* closing anyway */
    }
  }

  /** -> closed without committing (if not closed yet), then releases the stores, lock and producer. */
  async closeDirty(by: TaskMover): Promise<void> {
    this.abandon(by);
    await this.release();
  }

  /** Called once when the task is released (the runtime unregisters it from the memory budget). */
  onClosed: (() => void) | undefined;
  private releasing: Promise<void> | undefined;

  private release(): Promise<void> {
    this.releasing ??= this.doRelease().finally(() => this.markReleased());
    return this.releasing;
  }

  private async doRelease(): Promise<void> {
    // A start still in progress (restoring) must end before its stores and producer go away.
    await this.ready.catch(() => undefined);
    this.onClosed?.();
    try {
      this.task?.close();
    } catch {
      /* processors' close errors do not keep the task open */
    }
    await this.stores?.close().catch(() => undefined);
    await this.producer?.disconnect().catch(() => undefined);
  }
}
