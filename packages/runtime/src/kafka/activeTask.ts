/**
 * One task owned by this instance: its producer, its stores and its StreamTask (the shared executor).
 * The Kafka adapter around the executor: it feeds fetched records in, commits through commitProtocol.ts,
 * and knows how to start (fence, read offsets, restore) and how to close clean or dirty.
 */
import type { CollectedRecord, RecordCollector, Topology } from '@vltava/dsl';
import { ProcessingError } from '@vltava/dsl';
import { openTaskStores, type RestoreListener, type TaskStores } from '@vltava/state';
import type { Admin, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { ResolvedConfig } from '../config.js';
import { StreamTask, parseTaskId, type InputRecord, type RecordDroppedEvent, type TaskStoreAccess } from '../task/index.js';
import { commitTask, type CommitResult } from './commitProtocol.js';
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
}

export type TaskPhase = 'created' | 'initializing' | 'running' | 'closed';

const errorHeaders = (err: unknown, node: string): Record<string, string> => ({
  'vltava.error.message': err instanceof Error ? err.message.slice(0, 1000) : String(err).slice(0, 1000),
  'vltava.error.class': err instanceof Error ? err.name : typeof err,
  'vltava.error.node': node,
});

export class ActiveTask {
  readonly id: string;
  readonly partition: number;
  readonly subtopology: number;
  phase: TaskPhase = 'created';
  /** Next offset to process per input topic: records below it were already committed. */
  readonly position = new Map<string, number>();
  /** Resolves when the task is ready to process (init done). */
  ready!: Promise<void>;
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
  private readonly changelogStores = new Map<string, string>();
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
  }

  get exactlyOnce(): boolean {
    return this.deps.config.processingGuarantee === 'exactly-once';
  }

  /** Input topics of this task. */
  inputTopics(): string[] {
    return this.task?.inputTopics() ?? [];
  }

  start(): Promise<void> {
    this.phase = 'initializing';
    this.ready = this.init();
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
    const collector: RecordCollector = { send: (r) => void this.buffer.push(r) };
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
    for (const spec of specs) if (spec.logging) this.changelogStores.set(this.stores.changelogTopic(spec.name), spec.name);
    this.task = new StreamTask({
      topology,
      subtopology: this.subtopology,
      partition: this.partition,
      applicationId: config.applicationId,
      stores: this.stores,
      collector,
      wallClock: config.clock,
      deserializationExceptionHandler: config.deserializationExceptionHandler,
      logger: config.logger,
      partitionsFor: this.deps.partitionsFor,
      globalStores: this.deps.globalStores,
      onRecordDropped: this.deps.onRecordDropped,
    });
    const committed = await admin.fetchOffsets({ groupId: config.applicationId, topics: this.task.inputTopics() });
    for (const t of committed) {
      const p = t.partitions.find((x) => x.partition === this.partition);
      const offset = p === undefined ? -1 : Number(p.offset);
      this.position.set(t.topic, offset);
      this.committedPosition.set(t.topic, offset);
    }
    // 3. Restore: checkpoint + 1 .. end of each changelog (read_committed).
    const reader = new KafkaChangelogReader({ kafka, admin, applicationId: config.applicationId });
    const listener = this.deps.restoreListener;
    await this.stores.restore(reader, {
      onRestoreStart: (p) => listener.onRestoreStart?.(p),
      onBatchRestored: (p) => listener.onBatchRestored?.(p),
      onRestoreEnd: (p) => {
        this.restoredRecords += p.restored;
        listener.onRestoreEnd?.(p);
      },
    });
    this.lastCommitAt = config.clock();
    this.phase = 'running';
  }

  /**
   * Processes the fetched records of one input partition, synchronously, and returns false if the
   * batch was fetched from past this task's position (a stale fetch from before a rewind: it must be
   * dropped, a seek to the position is pending). Records below the position are skipped: kafkajs may
   * have fetched from offsets it read before this task fenced its predecessor.
   */
  processBatch(topic: string, fetchedOffset: number, lastOffset: number, messages: readonly KafkaMessage[]): boolean {
    const task = this.task!;
    let from = this.position.get(topic) ?? -1;
    if (from >= 0 && fetchedOffset > from) return false;
    const handler = this.deps.config.processingExceptionHandler;
    for (const m of messages) {
      const offset = Number(m.offset);
      if (offset < from) continue;
      const record: InputRecord = {
        topic,
        partition: this.partition,
        offset,
        key: m.key,
        value: m.value,
        timestamp: Number(m.timestamp),
        headers: m.headers as InputRecord['headers'],
      };
      try {
        task.process(record);
      } catch (err) {
        if (handler === 'fail' || !(err instanceof ProcessingError)) throw err;
        this.buffer.push({
          topic: handler.deadLetterTopic,
          key: m.key,
          value: m.value,
          timestamp: record.timestamp,
          headers: { ...(m.headers as Record<string, Buffer | string | undefined>), ...errorHeaders(err, err.node), 'vltava.error.topic': topic, 'vltava.error.partition': String(this.partition), 'vltava.error.offset': String(offset) },
        });
      }
      from = offset + 1;
      this.processed++;
    }
    // Past the batch's last offset, control records (transaction markers) and aborted records
    // included, as Kafka Streams commits the consumer position: the committed offset then equals the
    // end of the partition once everything is processed.
    if (lastOffset + 1 > from) from = lastOffset + 1;
    this.position.set(topic, from);
    return true;
  }

  /**
   * A batch kafkajs did not hand to eachBatch because it held only transaction markers or aborted
   * records: move past it, so the committed offset reaches the end of the partition.
   */
  skipFilteredBatch(topic: string, firstOffset: number, lastOffset: number): void {
    const from = this.position.get(topic);
    if (from === undefined || (from >= 0 && firstOffset > from)) return;
    if (lastOffset + 1 > from) this.position.set(topic, lastOffset + 1);
  }

  private positionMoved(): boolean {
    for (const [topic, offset] of this.position) if (offset >= 0 && this.committedPosition.get(topic) !== offset) return true;
    return false;
  }

  /** The input offsets to commit: the position of every input partition read so far. */
  private committableOffsets(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [topic, offset] of this.position) if (offset >= 0) out.set(topic, offset);
    return out;
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
    if (this.phase === 'closed') return 0;
    return (this.stores?.pendingBytes() ?? 0) + this.buffer.length * 128;
  }

  async commit(commitConsumerOffsets = this.deps.commitConsumerOffsets): Promise<CommitResult> {
    const task = this.task!;
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
      commitConsumerOffsets,
      faultInjection: this.deps.config.faultInjection,
    });
    task.markCommitted();
    this.lastCommitted = offsets;
    for (const [topic, offset] of offsets) this.committedPosition.set(topic, offset);
    this.lastCommitAt = this.deps.config.clock();
    this.deps.onCommitted(this, result);
    return result;
  }

  /** Closes after a final commit. Throws if the commit fails (the caller then closes dirty). */
  async closeClean(): Promise<void> {
    if (this.phase === 'running' && this.commitNeeded()) await this.commit();
    await this.release();
  }

  /** Closes without committing: uncommitted work is dropped (LevelDB untouched), the lock released. */
  async closeDirty(): Promise<void> {
    this.buffer.length = 0;
    try {
      this.stores?.abort();
    } catch {
      /* closing anyway */
    }
    await this.release();
  }

  /** Called once when the task is released (the runtime unregisters it from the memory budget). */
  onClosed: (() => void) | undefined;

  private async release(): Promise<void> {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
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
