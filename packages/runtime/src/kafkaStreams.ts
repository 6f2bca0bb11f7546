/**
 * KafkaStreams: runs a Topology on Kafka, exactly once.
 *
 *   const app = new KafkaStreams(builder.build(), { applicationId: 'word-count', brokers: ['127.0.0.1:9092'] });
 *   app.on('app.state', ({ to }) => console.log(to));
 *   await app.start();
 *   ...
 *   await app.close();
 *
 * One kafkajs consumer per instance, in the group `applicationId`, with a sticky task assignor; one
 * transactional producer per task. Tasks run on the shared executor (`@vltava/runtime/task`); the
 * commit protocol is in kafka/commitProtocol.ts. States:
 * CREATED -> REBALANCING <-> RUNNING -> PENDING_SHUTDOWN -> NOT_RUNNING, and ERROR.
 */
import { EventEmitter } from 'node:events';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { StreamsError, TaskMigratedError, type Topology } from '@vltava/dsl';
import { MemoryBudget, cleanUnownedTaskDirs, type RestoreProgress } from '@vltava/state';
import { Kafka, logLevel, type Admin, type Consumer, type EachBatchPayload } from 'kafkajs';
import { resolveConfig, type ResolvedConfig, type StreamsConfig } from './config.js';
import { ActiveTask } from './kafka/activeTask.js';
import { prepareTopics, type TopicLayout } from './kafka/internalTopics.js';
import { isFencingError } from './kafka/kafkaErrors.js';
import { taskAssignor } from './kafka/taskAssignor.js';
import { taskIdOf, type RecordDroppedEvent } from './task/index.js';
import { GlobalStateManager } from './kafka/globalState.js';

/** kafkajs' Batch has `fetchedOffset` (the offset the fetch asked for) but its typings omit it. */
const fetchedOffsetOf = (batch: EachBatchPayload['batch']): number => Number((batch as unknown as { fetchedOffset: string }).fetchedOffset);

export type StreamsState = 'CREATED' | 'REBALANCING' | 'RUNNING' | 'PENDING_SHUTDOWN' | 'NOT_RUNNING' | 'ERROR';

export interface StreamsEvents {
  'app.state': { readonly from: StreamsState; readonly to: StreamsState };
  'task.created': { readonly taskId: string };
  'task.running': { readonly taskId: string; readonly restored: number };
  'task.revoked': { readonly taskId: string };
  'task.migrated': { readonly taskId: string; readonly reason: string };
  'task.committed': { readonly taskId: string; readonly records: number; readonly latencyMs: number; readonly offsets: Readonly<Record<string, number>> };
  /** An operator dropped a record on purpose: a late record, a null key in an aggregation, a duplicate in dedupe. */
  'task.record.dropped': RecordDroppedEvent;
  /** A fetched batch went through the task (records processed, not yet committed). */
  'task.processed': { readonly taskId: string; readonly topic: string; readonly records: number };
  'task.restore.start': RestoreProgress;
  'task.restore.progress': RestoreProgress;
  'task.restore.end': RestoreProgress;
  error: { readonly error: Error; readonly taskId?: string };
}

export interface StreamsMetrics {
  readonly state: StreamsState;
  readonly tasks: readonly string[];
  readonly recordsProcessed: number;
  /** Records processed per second since start. */
  readonly recordsPerSecond: number;
  readonly commits: number;
  readonly commitLatencyAvgMs: number;
  readonly commitLatencyMaxMs: number;
  /** Records not yet fetched, per `topic-partition`, as of the last fetch. */
  readonly lag: Readonly<Record<string, number>>;
}

const TRANSITIONS: Record<StreamsState, readonly StreamsState[]> = {
  CREATED: ['REBALANCING', 'PENDING_SHUTDOWN', 'ERROR'],
  REBALANCING: ['RUNNING', 'REBALANCING', 'PENDING_SHUTDOWN', 'ERROR'],
  RUNNING: ['REBALANCING', 'PENDING_SHUTDOWN', 'ERROR'],
  PENDING_SHUTDOWN: ['NOT_RUNNING'],
  NOT_RUNNING: [],
  ERROR: ['PENDING_SHUTDOWN'],
};

/** Serialises processing, commits and punctuation of this instance (they touch the same tasks). */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

export class KafkaStreams {
  readonly config: ResolvedConfig;
  private readonly emitter = new EventEmitter();
  private current: StreamsState = 'CREATED';
  private readonly kafka: Kafka;
  private admin: Admin | undefined;
  private consumer: Consumer | undefined;
  private layout: TopicLayout | undefined;
  private readonly tasks = new Map<string, ActiveTask>();
  private readonly closing = new Map<string, Promise<void>>();
  private readonly lock = new Mutex();
  private readonly budget: MemoryBudget;
  private timer: NodeJS.Timeout | undefined;
  private cleanupTimer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private processedTotal = 0;
  private commits = 0;
  private commitLatencySum = 0;
  private commitLatencyMax = 0;
  private readonly lag = new Map<string, number>();
  private failureSince: number | undefined;
  private global: GlobalStateManager | undefined;
  /** Our member id in the group, from the last assignment. */
  private memberId: string | undefined;

  constructor(
    readonly topology: Topology,
    config: StreamsConfig,
  ) {
    this.config = resolveConfig(config);
    this.budget = new MemoryBudget(this.config.maxPendingBytes);
    const logger = this.config.logger;
    this.kafka = new Kafka({
      clientId: this.config.applicationId,
      logLevel: logLevel.WARN,
      // kafkajs' own errors (connection retries, coordinator moves) are mostly transient and retried:
      // they go to the app's logger as warnings, not to stdout.
      logCreator: () => (entry) => logger.warn(`kafkajs ${entry.namespace}: ${entry.log.message}`, { level: entry.label }),
      ...this.config.kafka,
      brokers: [...this.config.brokers],
    });
  }

  get state(): StreamsState {
    return this.current;
  }

  on<E extends keyof StreamsEvents>(event: E, listener: (payload: StreamsEvents[E]) => void): this {
    this.emitter.on(event, listener);
    return this;
  }

  off<E extends keyof StreamsEvents>(event: E, listener: (payload: StreamsEvents[E]) => void): this {
    this.emitter.off(event, listener);
    return this;
  }

  /** Emits only when someone listens; `make` builds the payload lazily. */
  private emit<E extends keyof StreamsEvents>(event: E, make: () => StreamsEvents[E]): void {
    if (this.emitter.listenerCount(event) > 0) this.emitter.emit(event, make());
  }

  private setState(to: StreamsState): void {
    const from = this.current;
    if (from === to && to !== 'REBALANCING') return;
    if (!TRANSITIONS[from].includes(to)) return;
    this.current = to;
    if (from !== to) this.emit('app.state', () => ({ from, to }));
  }

  /** Validates and creates topics, joins the group and starts processing. Resolves once joined. */
  async start(): Promise<void> {
    if (this.current !== 'CREATED') {
      throw new StreamsError(`start() can be called once, on a CREATED app; this app is ${this.current}. Create a new KafkaStreams to start again.`);
    }
    const cfg = this.config;
    this.startedAt = cfg.clock();
    this.setState('REBALANCING');
    const admin = this.kafka.admin();
    this.admin = admin;
    try {
      await admin.connect();
    } catch (e) {
      this.setState('ERROR');
      throw new StreamsError(
        `Cannot reach the Kafka brokers ${cfg.brokers.join(',')}: ${(e as Error).message}. Check the brokers setting and that the cluster is up (pnpm kafka:status for the local broker).`,
        { cause: e, retriable: true },
      );
    }
    try {
      const dlq = cfg.processingExceptionHandler === 'fail' ? [] : [cfg.processingExceptionHandler.deadLetterTopic];
      const desHandler = cfg.deserializationExceptionHandler;
      if (typeof desHandler === 'object') dlq.push(desHandler.deadLetterTopic);
      this.layout = await prepareTopics(admin, this.topology, cfg.applicationId, { replicationFactor: cfg.replicationFactor, extraSinkTopics: dlq });
    } catch (e) {
      await admin.disconnect().catch(() => undefined);
      this.setState('ERROR');
      throw e;
    }
    const layout = this.layout;
    if (this.topology.globalTables.length > 0) {
      // Global tables are loaded to their end before any stream task starts.
      this.global = new GlobalStateManager(this.topology, cfg, this.kafka, admin);
      try {
        await this.global.start();
      } catch (e) {
        this.setState('ERROR');
        throw e;
      }
    }
    await this.startConsumer();
    this.timer = setInterval(() => void this.tick(), Math.max(10, Math.floor(cfg.commitIntervalMs / 2)));
    this.cleanupTimer = setInterval(() => void this.cleanStateDirs(), Math.max(1_000, Math.min(cfg.stateCleanupDelayMs, 60_000)));
    this.cleanupTimer.unref();
  }

  /**
   * Creates the group consumer and starts fetching. Also used to replace a consumer that kafkajs gave
   * up on (a CRASH it does not restart, e.g. a non-retriable connection error during a broker restart):
   * tasks keep running and keep their positions; the new member's assignment carries them over.
   */
  private async startConsumer(): Promise<void> {
    const cfg = this.config;
    const layout = this.layout!;
    const consumer = this.kafka.consumer({
      groupId: cfg.applicationId,
      readUncommitted: cfg.processingGuarantee !== 'exactly-once',
      sessionTimeout: cfg.sessionTimeoutMs,
      heartbeatInterval: cfg.heartbeatIntervalMs,
      rebalanceTimeout: Math.max(cfg.sessionTimeoutMs, 30_000),
      maxWaitTimeInMs: Math.min(cfg.commitIntervalMs, 500),
      allowAutoTopicCreation: false,
      partitionAssigners: [taskAssignor({ tasks: () => layout.tasks, ownedTasks: () => [...this.tasks.keys()] })],
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.onAssignment(e.payload.memberAssignment, e.payload.memberId));
    consumer.on(consumer.events.REBALANCING, () => this.setState('REBALANCING'));
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      // Marker-only batches never reach eachBatch; their offsets still count as consumed.
      if (payload.batchSize !== 0) return;
      const id = this.taskIdFor(payload.topic, payload.partition);
      const task = id === undefined ? undefined : this.tasks.get(id);
      if (task?.phase === 'running' && payload.firstOffset !== null) {
        task.skipFilteredBatch(payload.topic, Number(payload.firstOffset), Number(payload.lastOffset));
      }
    });
    consumer.on(consumer.events.CRASH, (e) => {
      const err = e.payload.error;
      if (e.payload.restart) {
        cfg.logger.warn(`consumer error, kafkajs restarts it: ${err.message}`);
        return;
      }
      if (!this.isActive() || consumer !== this.consumer) return;
      this.replaceConsumer(err);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: layout.sourceTopics, fromBeginning: cfg.autoOffsetReset === 'earliest' });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.onBatch(payload),
    });
  }

  /**
   * Points the consumer at the task's committed position. kafkajs throws if its consumer is not running
   * (e.g. while it restarts after a broker outage); then the stale-batch check in onBatch seeks again.
   */
  private seekToPosition(task: ActiveTask, onlyTopic?: string): void {
    for (const [topic, offset] of task.position) {
      if (offset < 0 || (onlyTopic !== undefined && topic !== onlyTopic)) continue;
      try {
        this.consumer?.seek({ topic, partition: task.partition, offset: String(offset) });
      } catch (e) {
        this.config.logger.warn(`could not seek ${topic}-${task.partition} to ${offset} yet: ${(e as Error).message}`);
      }
    }
  }

  /** Starts a new consumer after kafkajs gave up on the old one, retrying until brokerRetryTimeoutMs. */
  private replaceConsumer(err: unknown): void {
    if (this.giveUp(err)) {
      void this.fail(new StreamsError(`The consumer stopped and could not be restarted within brokerRetryTimeoutMs: ${(err as Error).message}`, { cause: err }));
      return;
    }
    this.config.logger.warn(`the consumer stopped (${(err as Error).message}); starting a new one`);
    const old = this.consumer;
    setTimeout(() => {
      if (!this.isActive() || old !== this.consumer) return;
      void old?.disconnect().catch(() => undefined);
      this.startConsumer().catch((e: unknown) => this.replaceConsumer(e));
    }, 1_000);
  }

  private taskIdFor(topic: string, partition: number): string | undefined {
    const sub = this.topology.subtopologyFor(topic, this.config.applicationId);
    return sub === undefined ? undefined : taskIdOf(sub.id, partition);
  }

  private onAssignment(assignment: Record<string, number[]>, memberId: string): void {
    // A new member id means the group had removed us (a zombie: frozen, or cut off longer than the
    // session timeout) and others may have owned our tasks meanwhile. Nothing we hold can be trusted
    // then: every task we still have is closed without committing and, if assigned again, started
    // afresh (fence, read offsets, restore). With the same member id, tasks we keep were ours throughout.
    const rejoined = this.memberId !== undefined && memberId !== this.memberId;
    this.memberId = memberId;
    const wanted = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const p of partitions) {
        const id = this.taskIdFor(topic, p);
        if (id !== undefined) wanted.add(id);
      }
    }
    for (const [id, task] of this.tasks) {
      if (wanted.has(id) && !rejoined) continue;
      this.tasks.delete(id);
      this.emit('task.revoked', () => ({ taskId: id }));
      this.closing.set(
        id,
        this.lock
          .run(async () => {
            await task.ready.catch(() => undefined);
            if (rejoined) {
              await task.closeDirty();
              return;
            }
            // Clean if we can (a commit may still succeed before the new owner fences us), else dirty.
            await task.closeClean().catch(async (err: unknown) => {
              if (err instanceof TaskMigratedError) this.emit('task.migrated', () => ({ taskId: id, reason: err.message }));
              await task.closeDirty();
            });
          })
          .finally(() => this.closing.delete(id)),
      );
    }
    const starting: Promise<void>[] = [];
    for (const id of wanted) if (!this.tasks.has(id)) starting.push(this.startTask(id));
    void Promise.allSettled(starting).then(() => {
      if ([...this.tasks.values()].every((t) => t.phase === 'running')) this.setState('RUNNING');
    });
    if (starting.length === 0) this.setState('RUNNING');
  }

  private startTask(id: string): Promise<void> {
    const task = new ActiveTask(id, {
      config: this.config,
      topology: this.topology,
      kafka: this.kafka,
      admin: this.admin!,
      partitionsFor: (topic) => this.layout?.partitions.get(topic),
      restoreListener: {
        onRestoreStart: (p) => this.emit('task.restore.start', () => p),
        onBatchRestored: (p) => this.emit('task.restore.progress', () => p),
        onRestoreEnd: (p) => this.emit('task.restore.end', () => p),
      },
      commitConsumerOffsets: (offsets) => this.consumer!.commitOffsets(offsets),
      globalStores: this.global?.stores,
      onRecordDropped: (e) => this.emit('task.record.dropped', () => e),
      onCommitted: (t, r) => {
        this.commits++;
        this.commitLatencySum += r.latencyMs;
        this.commitLatencyMax = Math.max(this.commitLatencyMax, r.latencyMs);
        this.emit('task.committed', () => ({ taskId: t.id, records: r.records, latencyMs: r.latencyMs, offsets: Object.fromEntries(t.lastCommitted) }));
      },
    });
    this.tasks.set(id, task);
    this.emit('task.created', () => ({ taskId: id }));
    const unregister = this.budget.register(task);
    task.onClosed = unregister;
    const previous = this.closing.get(id) ?? Promise.resolve();
    task.ready = previous.then(() => task.start());
    return task.ready.then(
      () => {
        if (this.tasks.get(id) !== task) return; // revoked while it was starting
        // kafkajs may have fetched from offsets read before this task fenced its predecessor, or past
        // records of an aborted commit: point it at the committed position.
        this.seekToPosition(task);
        this.emit('task.running', () => ({ taskId: id, restored: task.restoredRecords }));
      },
      async (err: unknown) => {
        if (this.tasks.get(id) === task) this.tasks.delete(id);
        await task.closeDirty();
        if (this.current === 'PENDING_SHUTDOWN' || this.current === 'NOT_RUNNING') return;
        if (isFencingError(err)) return; // someone else owns it now; the group will tell us
        this.emit('error', () => ({ error: err as Error, taskId: id }));
        if (this.giveUp(err)) {
          await this.fail(err);
          return;
        }
        this.config.logger.warn(`task ${id} failed to start, retrying: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 500));
        if (this.tasks.has(id) || !this.isActive()) return;
        await this.startTask(id);
      },
    );
  }

  private isActive(): boolean {
    return this.current === 'RUNNING' || this.current === 'REBALANCING';
  }

  /** Transient failures are retried for brokerRetryTimeoutMs; configuration errors are not. */
  private giveUp(err: unknown): boolean {
    if (err instanceof StreamsError && !err.retriable) return true;
    const now = this.config.clock();
    this.failureSince ??= now;
    return now - this.failureSince > this.config.brokerRetryTimeoutMs;
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale()) return;
    const id = this.taskIdFor(batch.topic, batch.partition);
    const task = id === undefined ? undefined : this.tasks.get(id);
    if (task === undefined) return;
    try {
      await task.ready;
    } catch {
      return;
    }
    if (this.tasks.get(id!) !== task || task.phase !== 'running') return;
    this.lag.set(`${batch.topic}-${batch.partition}`, Number(batch.offsetLag()));
    await this.lock.run(async () => {
      if (task.phase !== 'running') return;
      const before = task.processed;
      try {
        if (!task.processBatch(batch.topic, fetchedOffsetOf(batch), Number(batch.lastOffset()), batch.messages)) {
          // Fetched from past the task's position (before a rewind): drop it and make sure a seek is pending.
          this.seekToPosition(task, batch.topic);
          return;
        }
      } catch (err) {
        await this.fail(err);
        return;
      }
      this.processedTotal += task.processed - before;
      this.emit('task.processed', () => ({ taskId: task.id, topic: batch.topic, records: task.processed - before }));
      resolveOffset(batch.lastOffset());
      const now = this.config.clock();
      if (this.budget.exceeded()) await this.commitTasks([...this.tasks.values()]);
      else if (now - task.lastCommitAt >= this.config.commitIntervalMs) await this.commitTasks([task]);
    });
    await heartbeat().catch(() => undefined);
  }

  /** Periodic: wall-clock punctuation, and commits of tasks whose interval has passed. */
  private async tick(): Promise<void> {
    if (this.current !== 'RUNNING' && this.current !== 'REBALANCING') return;
    await this.lock.run(async () => {
      const now = this.config.clock();
      const running = [...this.tasks.values()].filter((t) => t.phase === 'running');
      for (const t of running) {
        try {
          t.punctuate(now);
        } catch (err) {
          await this.fail(err);
          return;
        }
      }
      await this.commitTasks(running.filter((t) => now - t.lastCommitAt >= this.config.commitIntervalMs));
    });
  }

  /** Commits tasks in parallel (each has its own producer). Must run under the lock. */
  private async commitTasks(tasks: readonly ActiveTask[]): Promise<void> {
    await Promise.all(
      tasks.map(async (task) => {
        if (task.phase !== 'running') return;
        if (!task.commitNeeded()) {
          task.lastCommitAt = this.config.clock();
          return;
        }
        try {
          await task.commit();
          this.failureSince = undefined;
        } catch (err) {
          await this.onCommitFailure(task, err);
        }
      }),
    );
  }

  private async onCommitFailure(task: ActiveTask, err: unknown): Promise<void> {
    await task.closeDirty();
    if (this.tasks.get(task.id) === task) this.tasks.delete(task.id);
    if (err instanceof TaskMigratedError) {
      // Another instance initialised this task's producer: we are the stale owner. Drop the task; when
      // our consumer rejoins, onAssignment starts afresh whatever the group gives us.
      this.config.logger.warn(err.message, { taskId: task.id });
      this.emit('task.migrated', () => ({ taskId: task.id, reason: err.message }));
      return;
    }
    this.emit('error', () => ({ error: err as Error, taskId: task.id }));
    if (this.giveUp(err)) {
      await this.fail(err);
      return;
    }
    // The transaction was aborted and the overlay dropped: restart the task from its committed offsets.
    this.config.logger.warn(`commit of task ${task.id} failed (${(err as Error).message}); restarting it from the committed offsets`);
    void this.startTask(task.id);
  }

  private async cleanStateDirs(): Promise<void> {
    await cleanUnownedTaskDirs({
      stateDir: this.config.stateDir,
      applicationId: this.config.applicationId,
      ownedTaskIds: this.tasks.keys(),
      delayMs: this.config.stateCleanupDelayMs,
      now: this.config.clock(),
    }).catch((e: unknown) => this.config.logger.warn(`state directory cleanup failed: ${(e as Error).message}`));
  }

  private async fail(err: unknown): Promise<void> {
    if (this.current === 'ERROR' || this.current === 'PENDING_SHUTDOWN' || this.current === 'NOT_RUNNING') return;
    const error = err instanceof Error ? err : new Error(String(err));
    this.config.logger.error(`stopping: ${error.message}`);
    this.setState('ERROR');
    this.emit('error', () => ({ error }));
    this.stopTimers();
    // Nothing of the failed transaction commits; the consumer stops so no further records are read.
    void this.consumer?.stop().catch(() => undefined);
    for (const t of this.tasks.values()) await t.closeDirty();
    this.tasks.clear();
  }

  private stopTimers(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.cleanupTimer) clearInterval(this.cleanupTimer);
    this.timer = this.cleanupTimer = undefined;
  }

  /** Commits and checkpoints every task, leaves the group and disconnects. */
  async close(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.current === 'NOT_RUNNING' || this.current === 'PENDING_SHUTDOWN') return;
    this.setState('PENDING_SHUTDOWN');
    this.stopTimers();
    const work = (async () => {
      await this.consumer?.stop().catch(() => undefined);
      await this.lock.run(async () => {
        for (const t of this.tasks.values()) {
          await t.ready?.catch(() => undefined);
          await t.closeClean().catch(async (e: unknown) => {
            this.config.logger.warn(`task ${t.id} could not commit on close: ${(e as Error).message}`);
            await t.closeDirty();
          });
        }
        this.tasks.clear();
      });
      await Promise.allSettled(this.closing.values());
      await this.consumer?.disconnect().catch(() => undefined);
      await this.global?.close();
      await this.admin?.disconnect().catch(() => undefined);
    })();
    const timeoutMs = opts.timeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([work, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    this.setState('NOT_RUNNING');
  }

  /** Deletes this app's local state (`<stateDir>/<applicationId>`): the next start restores from the changelogs. */
  async cleanUp(): Promise<void> {
    if (this.current !== 'CREATED' && this.current !== 'NOT_RUNNING' && this.current !== 'ERROR') {
      throw new StreamsError(`cleanUp() wipes local state and may only run before start() or after close(); the app is ${this.current}.`);
    }
    await rm(join(resolve(this.config.stateDir), this.config.applicationId), { recursive: true, force: true });
  }

  metrics(): StreamsMetrics {
    const elapsed = Math.max(1, this.config.clock() - this.startedAt) / 1000;
    return {
      state: this.current,
      tasks: [...this.tasks.keys()].sort(),
      recordsProcessed: this.processedTotal,
      recordsPerSecond: this.processedTotal / elapsed,
      commits: this.commits,
      commitLatencyAvgMs: this.commits === 0 ? 0 : this.commitLatencySum / this.commits,
      commitLatencyMaxMs: this.commitLatencyMax,
      lag: Object.fromEntries(this.lag),
    };
  }
}
