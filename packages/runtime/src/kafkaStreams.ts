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
 * transactional producer per task. Tasks run on the shared executor (`@vltava/executor`); the
 * commit protocol is in kafka/commitProtocol.ts. States:
 * CREATED -> REBALANCING <-> RUNNING -> PENDING_SHUTDOWN -> NOT_RUNNING, and ERROR.
 */
import { EventEmitter } from 'node:events';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, StreamsError, defaultPartition, type KeyValue, type ReadOnlyKeyValueStore, type Serde, type Topology } from '@vltava/dsl';
import { MemoryBudget, cleanUnownedTaskDirs, type RestoreProgress } from '@vltava/state';
import { createRequire } from 'node:module';
import { AssignerProtocol, Kafka, logLevel, type Admin, type Consumer, type EachBatchPayload } from 'kafkajs';
import { logs, resolveConfig, type LogLevel, type ResolvedConfig, type StreamsConfig } from './config.js';
import { ActiveTask } from './kafka/activeTask.js';
import { prepareTopics, type TopicLayout } from './kafka/internalTopics.js';
import { authorizationFailure, kafkaErrorType } from './kafka/kafkaErrors.js';
import { lastStableOffsetOf, requireKafkajsFixes } from './kafka/kafkajsFixes.js';
import { onOffsetOutOfRange } from './kafka/offsetOutOfRange.js';
import { readTopicLimits, type TopicLimits } from './kafka/productionGuard.js';
import { TaskManager, type TaskManagerHost } from './kafka/taskManager.js';
import { StandbyTask } from './kafka/standbyTask.js';

/** The period of the commit/punctuation tick: a tenth of the commit interval, between 5 and 100 ms. */
export const tickIntervalMs = (commitIntervalMs: number): number => Math.max(5, Math.min(100, Math.floor(commitIntervalMs / 10)));

/** How often a standby task replays its changelogs' new records. */
const STANDBY_POLL_MS = 500;
import { decodeMemberInfo, taskAssignor } from './kafka/taskAssignor.js';
import { taskIdOf, type RecordDroppedEvent } from '@vltava/executor';
import { GlobalStateManager } from './kafka/globalState.js';
import { STREAM_THREADS, StreamThreads, loadTopology, streamThreadContext, moduleHref, threadName, type TaskClaim, type ThreadMetadata, type ThreadsInternal } from './streamThreads.js';

/** kafkajs' Batch has `fetchedOffset` (the offset the fetch asked for) but its typings omit it. */
const fetchedOffsetOf = (batch: EachBatchPayload['batch']): number => Number((batch as unknown as { fetchedOffset: string }).fetchedOffset);

export type StreamsState = 'CREATED' | 'REBALANCING' | 'RUNNING' | 'PENDING_SHUTDOWN' | 'NOT_RUNNING' | 'ERROR';

export interface StreamsEvents {
  'app.state': { readonly from: StreamsState; readonly to: StreamsState };
  'task.created': { readonly taskId: string };
  'task.running': { readonly taskId: string; readonly restored: number };
  'task.revoked': { readonly taskId: string };
  'task.migrated': { readonly taskId: string; readonly reason: string };
  /** A task's committed offset was outside the partition (below its log start, e.g. after retention): reset by autoOffsetReset. */
  'task.offset.reset': { readonly taskId: string; readonly topic: string; readonly from: number; readonly to: number; readonly policy: 'earliest' | 'latest' };
  'task.committed': { readonly taskId: string; readonly records: number; readonly latencyMs: number; readonly offsets: Readonly<Record<string, number>> };
  /** An operator dropped a record on purpose: a late record, a null key in an aggregation, a duplicate in dedupe. */
  'task.record.dropped': RecordDroppedEvent;
  /** A fetched batch went through the task (records processed, not yet committed). */
  /** A standby task applied changelog records. */
  'task.standby.updated': { readonly taskId: string; readonly applied: number };
  'task.processed': {
    readonly taskId: string;
    readonly topic: string;
    readonly records: number;
    /** Wall clock minus the timestamp of the batch's last record: Kafka Streams' record-e2e-latency at the source. */
    readonly e2eLatencyMs: number;
  };
  'task.restore.start': RestoreProgress;
  'task.restore.progress': RestoreProgress;
  'task.restore.end': RestoreProgress;
  /** `threadId`: with numStreamThreads > 1, the stream thread it happened in (`<applicationId>-StreamThread-<n>`). */
  error: { readonly error: Error; readonly taskId?: string; readonly threadId?: string };
}

/** The event names, as constants: `app.on(StreamsEventNames.TASK_COMMITTED, ...)`. */
export const StreamsEventNames = {
  APP_STATE: 'app.state',
  TASK_CREATED: 'task.created',
  TASK_RUNNING: 'task.running',
  TASK_REVOKED: 'task.revoked',
  TASK_MIGRATED: 'task.migrated',
  TASK_OFFSET_RESET: 'task.offset.reset',
  TASK_COMMITTED: 'task.committed',
  TASK_RECORD_DROPPED: 'task.record.dropped',
  TASK_PROCESSED: 'task.processed',
  TASK_STANDBY_UPDATED: 'task.standby.updated',
  TASK_RESTORE_START: 'task.restore.start',
  TASK_RESTORE_PROGRESS: 'task.restore.progress',
  TASK_RESTORE_END: 'task.restore.end',
  ERROR: 'error',
} as const satisfies Record<string, keyof StreamsEvents>;

/** One member of the app's group (allMetadata). */
export interface StreamsMetadata {
  readonly memberId: string;
  readonly clientHost: string;
  /** Its advertised host:port (config applicationServer), if it set one. */
  readonly applicationServer: string | undefined;
  readonly tasks: readonly string[];
  readonly stores: readonly string[];
  readonly topicPartitions: readonly { readonly topic: string; readonly partition: number }[];
}

/** Where a key of a store lives (queryMetadataForKey). */
export interface KeyQueryMetadata {
  readonly partition: number;
  readonly taskId: string;
  /** The applicationServer of the member running the task, if it advertised one. */
  readonly activeHost: string | undefined;
  readonly activeMemberId: string | undefined;
}

/** What a liveness / readiness probe needs. */
export interface StreamsHealth {
  /** False once the app is in ERROR or shut down: restart the process. */
  readonly live: boolean;
  /** True while RUNNING: every assigned task restored and processing. */
  readonly ready: boolean;
  readonly state: StreamsState;
  /** The error that moved the app to ERROR, if any. */
  readonly error: Error | undefined;
}

export interface StreamsMetrics {
  readonly state: StreamsState;
  readonly tasks: readonly string[];
  /** Standby tasks this instance keeps (numStandbyReplicas). */
  readonly standbyTasks: readonly string[];
  readonly recordsProcessed: number;
  /** Records processed per second over the last 10 s or so (not a lifetime average). */
  readonly recordsPerSecond: number;
  /** Records dropped on purpose by operators or the production handler, by reason. */
  readonly droppedRecords: Readonly<Record<string, number>>;
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

/** kafkajs' error base class (its ESM named exports do not include it). */
const { KafkaJSError } = createRequire(import.meta.url)('kafkajs') as { KafkaJSError: new (message: string, opts?: { retriable?: boolean }) => Error };

/** Broker answers that no retry can fix: the configuration is wrong. */
const CONFIG_ERRORS: Readonly<Record<string, string>> = {
  INVALID_SESSION_TIMEOUT: "sessionTimeoutMs is outside the broker's group.min.session.timeout.ms .. group.max.session.timeout.ms (6 000 .. 1 800 000 by default): set it within that range",
  GROUP_AUTHORIZATION_FAILED: 'the credentials may not use the consumer group <applicationId>: grant Read on the group (docs/runtime.md)',
  TOPIC_AUTHORIZATION_FAILED: 'the credentials may not read a source topic: grant Read on it',
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 'the credentials may not use the transactional ids <applicationId>-*: grant Write on them',
  INVALID_GROUP_ID: 'the broker rejects the group id: check applicationId',
};

export class KafkaStreams {
  readonly config: ResolvedConfig;
  private readonly emitter = new EventEmitter();
  private current: StreamsState = 'CREATED';
  private readonly kafka: Kafka;
  private admin: Admin | undefined;
  private consumer: Consumer | undefined;
  private layout: TopicLayout | undefined;
  /** Input partitions of each task, from the topic layout. */
  private readonly taskPartitions = new Map<string, readonly { topic: string; partition: number }[]>();
  /** Limits of the topics the app writes (productionGuard.ts), read at start. */
  private topicLimits: ReadonlyMap<string, TopicLimits> = new Map();
  private readonly manager: TaskManager;
  /** Standby tasks of this instance (numStandbyReplicas). */
  private readonly standbys = new Map<string, StandbyTask>();
  /** `topic:partition`s paused because their task's buffer is full. */
  private readonly backPressured = new Set<string>();
  private readonly budget: MemoryBudget;
  private timer: NodeJS.Timeout | undefined;
  private cleanupTimer: NodeJS.Timeout | undefined;
  private purgeTimer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private processedTotal = 0;
  private commits = 0;
  private commitLatencySum = 0;
  private commitLatencyMax = 0;
  private readonly lag = new Map<string, number>();
  private readonly dropped = new Map<string, number>();
  /** (time, records processed) samples, for a recent processing rate. */
  private readonly rateSamples: [number, number][] = [];
  private fatalError: Error | undefined;
  /** REPLACE_THREAD responses since the last successful commit. */
  private replacements = 0;
  /** Since when each task (or '*' for the app's own connections) has been failing, for brokerRetryTimeoutMs. */
  private readonly failingSince = new Map<string, number>();
  private global: GlobalStateManager | undefined;
  /** Our member id in the group, from the last assignment. */
  private memberId: string | undefined;
  /** A rejoin was asked for (a task was fenced): the next eachBatch makes kafkajs rejoin. */
  private rejoinReason: string | undefined;
  private rejoinFallback: NodeJS.Timeout | undefined;
  /** close() began: no more processing, the final commits are under way. */
  private closingDown = false;
  private unregisterOutOfRange: (() => void) | undefined;
  /** numStreamThreads > 1: this object is a shell over worker threads (streamThreads.ts). */
  private readonly threads: StreamThreads | undefined;
  /** Set when this app is the inner app of one stream thread. */
  private readonly asThread: Extract<ThreadsInternal, { kind: 'worker' }> | undefined;
  /** Each task instance's directory claim (stream threads), until the instance released everything. */
  private readonly claims = new Map<string, TaskClaim>();

  /**
   * Creates an app from a module that exports the topology, for `numStreamThreads` > 1 (with 1 it is
   * `new KafkaStreams(topology, config)`): a Topology holds closures, which cannot be sent to a worker
   * thread, so every stream thread imports the module itself (the main thread too, for describe(),
   * store names and key routing). The export (default `topology`) is a Topology or a function
   * returning one (or a Promise of one); it must build the same topology each time.
   *
   *   const app = await KafkaStreams.fromModule(new URL('./topology.js', import.meta.url), { ...config, numStreamThreads: 2 });
   */
  static async fromModule(specifier: string | URL, config: StreamsConfig, options: { readonly exportName?: string } = {}): Promise<KafkaStreams> {
    const resolved = resolveConfig(config);
    const href = moduleHref(specifier);
    if (streamThreadContext.name !== undefined) {
      throw new ConfigError(
        `KafkaStreams.fromModule was called while stream thread ${streamThreadContext.name} imported the topology module: every thread imports that module, so it must not create the app (each thread would start threads of its own). Keep the topology in a module of its own and create the app elsewhere.`,
      );
    }
    const exportName = options.exportName ?? 'topology';
    const topology = await loadTopology(href, exportName, (m) => resolved.logger.warn(m));
    if (resolved.numStreamThreads === 1) return new KafkaStreams(topology, config);
    const internal: ThreadsInternal = { kind: 'shell', href, exportName };
    return new KafkaStreams(topology, { ...config, [STREAM_THREADS]: internal } as StreamsConfig);
  }

  constructor(
    readonly topology: Topology,
    config: StreamsConfig,
  ) {
    this.config = resolveConfig(config);
    const internal = (config as { readonly [STREAM_THREADS]?: ThreadsInternal })[STREAM_THREADS];
    this.asThread = internal?.kind === 'worker' ? internal : undefined;
    if (this.config.numStreamThreads > 1) {
      if (internal?.kind !== 'shell') {
        const n = this.config.numStreamThreads;
        throw new ConfigError(
          `numStreamThreads ${n} runs the topology in ${n} worker threads, and a Topology object cannot be sent to a worker (it holds your functions). ` +
            `Create the app with await KafkaStreams.fromModule(new URL('./topology.js', import.meta.url), config), where that module exports \`topology\` (a Topology or a function returning one): each thread imports it.`,
        );
      }
      const { href, exportName } = internal;
      this.threads = new StreamThreads({
        config: this.config,
        rawConfig: config,
        topology,
        href,
        exportName,
        state: () => this.current,
        setState: (to) => this.setState(to),
        emit: (event, payload) => this.emit(event as keyof StreamsEvents, () => payload as never),
        fail: (error, emitted, threadId) => {
          this.fatalError = error;
          this.config.logger.error(`stopping: ${error.message}`, { thread: threadId });
          this.setState('ERROR');
          if (!emitted) this.emit('error', () => ({ error, threadId }));
        },
      });
    }
    this.budget = new MemoryBudget(this.config.maxPendingBytes);
    const logger = this.config.logger;
    const threshold = this.config.logLevel;
    this.kafka = new Kafka({
      clientId: this.config.applicationId,
      logLevel: threshold === 'debug' ? logLevel.DEBUG : threshold === 'info' ? logLevel.INFO : logLevel.WARN,
      // kafkajs' entries keep their structured fields (broker, groupId, memberId, error, retry...) as
      // meta. Its ERROR entries are mostly transient and retried: they are warnings here; the routine
      // noise of a rebalance (heartbeats answered "rebalancing") is debug.
      logCreator: () => (entry) => {
        const { message, ...fields } = entry.log;
        const meta = { namespace: entry.namespace, ...fields };
        const text = `kafkajs ${entry.namespace}: ${message}`;
        const routine = /rebalanc/i.test(message) || /REBALANCE_IN_PROGRESS/.test(String((fields as { error?: unknown }).error ?? ''));
        const level: LogLevel = routine ? 'debug' : entry.level <= logLevel.WARN ? 'warn' : entry.level === logLevel.INFO ? 'info' : 'debug';
        if (!logs(threshold, level)) return;
        if (level === 'warn') logger.warn(text, meta);
        else if (level === 'info') logger.info(text, meta);
        else logger.debug?.(text, meta);
      },
      ...this.config.kafka,
      brokers: [...this.config.brokers],
    });
    this.manager = new TaskManager(this.managerHost());
  }

  get state(): StreamsState {
    return this.current;
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<E extends keyof StreamsEvents>(event: E, listener: (payload: StreamsEvents[E]) => void): () => void {
    this.emitter.on(event, listener);
    this.threads?.listen(event, this.emitter.listenerCount(event));
    return () => void this.off(event, listener);
  }

  /**
   * Interactive queries: a read-only view of a key-value store over the tasks this instance runs,
   * showing committed state only (what the last commit of each task wrote, as a read_committed
   * reader of its changelog would see it). Keys of tasks on other instances are not here: route the
   * query to the instance that owns the key's partition. Table and aggregation stores show their
   * plain values (their timestamps are dropped).
   */
  store<K, V>(name: string): ReadOnlyKeyValueStore<K, V> {
    const spec = this.topology.stores.get(name);
    if (spec === undefined) {
      throw new StreamsError(`The topology has no store "${name}"; its stores are: ${[...this.topology.stores.keys()].join(', ') || '(none)'}.`);
    }
    if (spec.kind !== 'keyValue' || spec.versionedHistoryRetentionMs !== undefined) {
      throw new StreamsError(`store("${name}"): interactive queries serve key-value stores for now; "${name}" is a ${spec.versionedHistoryRetentionMs !== undefined ? 'versioned' : spec.kind} store.`);
    }
    // Several stream threads: each answers for its own tasks, over a synchronous message round trip.
    if (this.threads !== undefined) return this.threads.store<K, V>(name);
    const timestamped = spec.timestamped === true;
    const parts = (): ReadOnlyKeyValueStore<K, unknown>[] => {
      const out: ReadOnlyKeyValueStore<K, unknown>[] = [];
      for (const task of this.manager.running()) {
        if (!this.topology.subtopologies[task.subtopology]?.stores.includes(name)) continue;
        const view = task.committedView<ReadOnlyKeyValueStore<K, unknown>>(name);
        if (view !== undefined) out.push(view);
      }
      return out;
    };
    const plain = (v: unknown): V => (timestamped && v !== undefined && v !== null ? (v as { value: V }).value : (v as V));
    function* entries(iterables: Iterable<KeyValue<K, unknown>>[]): Generator<KeyValue<K, V>> {
      for (const it of iterables) for (const e of it) yield { key: e.key, value: plain(e.value) };
    }
    return {
      name,
      get: (key) => {
        for (const p of parts()) {
          const v = p.get(key);
          if (v !== undefined) return plain(v);
        }
        return undefined;
      },
      range: (from, to) => entries(parts().map((p) => p.range(from, to))),
      all: () => entries(parts().map((p) => p.all())),
      prefixScan: (prefix, serde) => entries(parts().map((p) => p.prefixScan(prefix, serde))),
      approximateNumEntries: () => parts().reduce((n, p) => n + p.approximateNumEntries(), 0),
    };
  }

  /**
   * Where the app runs, as the group sees it now (Kafka Streams' metadataForAllStreamsClients): every
   * member with its advertised applicationServer, its active tasks and the stores they hold. Read
   * from the group coordinator (describeGroups), so any instance can answer for all of them.
   */
  async allMetadata(): Promise<StreamsMetadata[]> {
    if (this.threads !== undefined) {
      if (this.current === 'CREATED') throw new StreamsError('allMetadata(): the app has not started');
      return this.threads.allMetadata();
    }
    const admin = this.admin;
    if (admin === undefined || this.layout === undefined) throw new StreamsError('allMetadata(): the app has not started');
    const { groups } = await admin.describeGroups([this.config.applicationId]);
    const out: StreamsMetadata[] = [];
    for (const m of groups[0]?.members ?? []) {
      const sub = AssignerProtocol.MemberMetadata.decode(m.memberMetadata);
      const server = decodeMemberInfo(sub?.userData).applicationServer;
      const assigned = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
      const tasks = decodeMemberInfo(assigned?.userData).tasks.sort();
      const stores = new Set<string>();
      for (const id of tasks) for (const st of this.topology.subtopologies[Number(id.split('_')[0])]?.stores ?? []) stores.add(st);
      const topicPartitions = Object.entries(assigned?.assignment ?? {}).flatMap(([topic, ps]) => ps.map((partition) => ({ topic, partition })));
      out.push({ memberId: m.memberId, clientHost: m.clientHost, applicationServer: server, tasks, stores: [...stores].sort(), topicPartitions });
    }
    return out;
  }

  /**
   * Which instance holds `key` of store `storeName` (Kafka Streams' queryMetadataForKey): the key's
   * partition is murmur2 of its serialized key over the store's task count, as the producer or the
   * repartition step put it there. `activeHost` is that task's member's applicationServer.
   */
  async queryMetadataForKey<K>(storeName: string, key: K, keySerde: Serde<K>): Promise<KeyQueryMetadata> {
    const sub = this.topology.subtopologies.findIndex((s) => s.stores.includes(storeName));
    if (sub < 0) throw new StreamsError(`queryMetadataForKey: the topology has no store "${storeName}".`);
    if (this.threads !== undefined) {
      if (this.current === 'CREATED') throw new StreamsError('queryMetadataForKey(): the app has not started');
      return this.threads.queryMetadataForKey(storeName, keySerde.serialize(key, `${this.config.applicationId}-${storeName}-changelog`));
    }
    const taskCount = this.layout?.taskCounts[sub];
    if (taskCount === undefined) throw new StreamsError('queryMetadataForKey(): the app has not started');
    const partition = defaultPartition(keySerde.serialize(key, `${this.config.applicationId}-${storeName}-changelog`), taskCount);
    const taskId = taskIdOf(this.topology.subtopologies[sub]!.id, partition);
    const owner = (await this.allMetadata()).find((m) => m.tasks.includes(taskId));
    return { partition, taskId, activeHost: owner?.applicationServer, activeMemberId: owner?.memberId };
  }

  /**
   * This process's stream threads (Kafka Streams' metadataForLocalThreads): one with
   * numStreamThreads 1 (this event loop), else one per worker thread, with its state and tasks.
   */
  metadataForLocalThreads(): ThreadMetadata[] {
    if (this.threads !== undefined) return this.threads.metadataForLocalThreads();
    return [{ threadName: threadName(this.config.applicationId, 0), threadState: this.current, activeTasks: this.manager.ids().sort(), standbyTasks: [...this.standbys.keys()].sort() }];
  }

  /** Liveness and readiness, for a health endpoint or a supervisor. */
  health(): StreamsHealth {
    return {
      live: this.current !== 'ERROR' && this.current !== 'NOT_RUNNING' && this.current !== 'PENDING_SHUTDOWN',
      ready: this.current === 'RUNNING',
      state: this.current,
      error: this.fatalError,
    };
  }

  off<E extends keyof StreamsEvents>(event: E, listener: (payload: StreamsEvents[E]) => void): this {
    this.emitter.off(event, listener);
    this.threads?.listen(event, this.emitter.listenerCount(event));
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
    if (this.threads !== undefined) return this.startThreads(this.threads);
    const cfg = this.config;
    // Exactly-once needs kafkajs' read_committed fixes in effect (the runtime applies them itself, so
    // npm installs have them too): refuse to run on a client without them.
    try {
      const report = await requireKafkajsFixes(cfg.processingGuarantee);
      for (const c of report.checks) if (!c.ok) cfg.logger.warn(`kafkajs fix "${c.name}" is not in effect (${c.detail}); the runtime works without it, more slowly`);
    } catch (e) {
      this.setState('ERROR');
      throw e;
    }
    this.startedAt = cfg.clock();
    this.setState('REBALANCING');
    const admin = this.kafka.admin();
    this.admin = admin;
    try {
      await connectWithin(admin, cfg.brokerRetryTimeoutMs);
    } catch (e) {
      await admin.disconnect().catch(() => undefined);
      this.setState('ERROR');
      throw new StreamsError(
        `Cannot reach the Kafka brokers ${cfg.brokers.join(',')} within brokerRetryTimeoutMs (${cfg.brokerRetryTimeoutMs} ms): ${(e as Error).message}. Check the brokers setting and that the cluster is up (pnpm kafka:status for the local broker).`,
        { cause: e, retriable: true },
      );
    }
    try {
      const peh = cfg.processingExceptionHandler;
      const dlq = typeof peh === 'object' ? [peh.deadLetterTopic] : [];
      const desHandler = cfg.deserializationExceptionHandler;
      if (typeof desHandler === 'object') dlq.push(desHandler.deadLetterTopic);
      const prodHandler = cfg.productionExceptionHandler;
      if (typeof prodHandler === 'object') dlq.push(prodHandler.deadLetterTopic);
      this.layout = await prepareTopics(admin, this.topology, cfg.applicationId, {
        replicationFactor: cfg.replicationFactor,
        extraSinkTopics: dlq,
        warn: (m) => cfg.logger.warn(m),
      });
      this.topicLimits = await readTopicLimits(admin, this.layout.writtenTopics);
    } catch (e) {
      await admin.disconnect().catch(() => undefined);
      this.setState('ERROR');
      const name = (e as Error)?.name ?? '';
      if (!(e instanceof StreamsError) && /Connection|NumberOfRetriesExceeded|RequestTimeout|BrokerNotFound|not connected/i.test(name + ' ' + String((e as Error)?.message))) {
        throw new StreamsError(
          `Cannot reach the Kafka brokers ${cfg.brokers.join(',')} (they accepted a connection but did not answer: ${(e as Error).message}). Check the brokers setting (a Kafka listener, not another service) and that the cluster is up.`,
          { cause: e, retriable: true },
        );
      }
      const denied = authorizationFailure(e);
      if (denied !== undefined && !(e instanceof ConfigError)) {
        throw new ConfigError(
          `The cluster refused the app's start-up checks (${denied}: ${(e as Error).message}). The credentials need, for application "${cfg.applicationId}": ` +
            `Read on the source topics; Write and DescribeConfigs on the output topics; Create, Read, Write, Delete and DescribeConfigs on topics prefixed "${cfg.applicationId}-"; ` +
            `Read on the group "${cfg.applicationId}" and groups prefixed "${cfg.applicationId}-"; Write on transactional ids prefixed "${cfg.applicationId}-" (docs/security.md).`,
          { cause: e },
        );
      }
      throw e;
    }
    for (const t of this.layout.tasks) this.taskPartitions.set(t.id, t.partitions);
    if (this.topology.globalTables.length > 0) {
      // Global tables are loaded to their end before any stream task starts.
      this.global = new GlobalStateManager(this.topology, cfg, this.kafka, admin, (e) => void this.fail(e));
      try {
        await this.global.start();
      } catch (e) {
        await this.global.close();
        await admin.disconnect().catch(() => undefined);
        this.setState('ERROR');
        throw e;
      }
    }
    this.unregisterOutOfRange = onOffsetOutOfRange(cfg.applicationId, (topic, partition) => this.onOutOfRange(topic, partition));
    await this.startConsumer();
    // Fine-grained, so a task commits within a few ms of its interval (a coarse tick adds up to one
    // tick to every hop's latency); a tick with nothing due is a loop over the running tasks.
    this.timer = setInterval(() => void this.tick(), tickIntervalMs(cfg.commitIntervalMs));
    // A stream thread leaves this to the shell, which knows the tasks of every thread.
    if (this.asThread === undefined) {
      this.cleanupTimer = setInterval(() => void this.cleanStateDirs(), Math.max(1_000, Math.min(cfg.stateCleanupDelayMs, 60_000)));
      this.cleanupTimer.unref();
    }
    this.purgeTimer = setInterval(() => void this.purgeRepartitionTopics(), cfg.repartitionPurgeIntervalMs);
    this.purgeTimer.unref();
  }

  /** numStreamThreads > 1: starts the worker threads; resolves once each has joined the group. */
  private async startThreads(threads: StreamThreads): Promise<void> {
    this.startedAt = this.config.clock();
    this.setState('REBALANCING');
    try {
      await threads.start();
    } catch (e) {
      this.fatalError = e as Error;
      this.setState('ERROR');
      await threads.close(10_000);
      throw e;
    }
  }

  /** The TaskManager's view of this app. */
  private managerHost(): TaskManagerHost {
    return {
      newTask: (id) => this.newTask(id),
      pause: (task) => this.pauseTask(task.id, true),
      resume: (task) => this.pauseTask(task.id, false),
      seek: (task) => this.seekToPosition(task),
      requestRejoin: (reason) => this.requestRejoin(reason),
      isActive: () => this.isActive() && !this.closingDown,
      giveUp: (err, id) => this.giveUp(err, id),
      fail: (err) => this.fail(err),
      logger: this.config.logger,
      emitCreated: (id) => this.emit('task.created', () => ({ taskId: id })),
      emitRunning: (task) => this.emit('task.running', () => ({ taskId: task.id, restored: task.restoredRecords })),
      emitRevoked: (id) => this.emit('task.revoked', () => ({ taskId: id })),
      emitMigrated: (id, reason) => this.emit('task.migrated', () => ({ taskId: id, reason })),
      emitError: (err, id) => this.emit('error', () => ({ error: err as Error, taskId: id })),
      beforeStart: async (id) => {
        // A stream thread waits until no sibling thread holds the task's directory.
        await this.claims.get(id)?.granted;
        const s = this.standbys.get(id);
        if (s === undefined) return;
        this.standbys.delete(id);
        await s.close();
      },
      tasksChanged: () => {
        if (!this.isActive() || this.closingDown) return;
        this.setState(this.rejoinReason === undefined && this.manager.allRunning() ? 'RUNNING' : 'REBALANCING');
      },
    };
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
      maxBytesPerPartition: cfg.maxPartitionFetchBytes,
      maxBytes: Math.max(cfg.fetchMaxBytes, cfg.maxPartitionFetchBytes),
      allowAutoTopicCreation: false,
      partitionAssigners: [
        taskAssignor({
          tasks: () => layout.tasks,
          // By partition, then sub-topology: a member over its quota keeps its first tasks, which then
          // mix every sub-topology (else a member that joins later, e.g. a second stream thread, would
          // get all of the stateful sub-topology's tasks and the first none).
          ownedTasks: () => byPartition(this.manager.ids()),
          ...(cfg.applicationServer === undefined ? {} : { applicationServer: cfg.applicationServer }),
          standbyReplicas: cfg.numStandbyReplicas,
          statefulTasks: () => layout.tasks.map((t) => t.id).filter((id) => this.isStateful(id)),
          standbyTasks: () => [...this.standbys.keys()],
        }),
      ],
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.onAssignment(e.payload.memberAssignment, e.payload.memberId));
    consumer.on(consumer.events.REBALANCING, () => this.setState('REBALANCING'));
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      // Marker-only batches never reach eachBatch; their offsets still count as consumed.
      if (payload.batchSize !== 0) return;
      const id = this.taskIdFor(payload.topic, payload.partition);
      const task = id === undefined ? undefined : this.manager.get(id);
      if (task?.state === 'running' && payload.firstOffset !== null) {
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

  /** Pauses fetching one input partition of a task while its buffer is full, and resumes it. */
  private backPressure(task: ActiveTask, topic: string, pause: boolean): void {
    const key = `${topic}:${task.partition}`;
    if (pause === this.backPressured.has(key)) return;
    try {
      if (pause) this.consumer?.pause([{ topic, partitions: [task.partition] }]);
      else this.consumer?.resume([{ topic, partitions: [task.partition] }]);
      if (pause) this.backPressured.add(key);
      else this.backPressured.delete(key);
    } catch (e) {
      this.config.logger.warn(`could not ${pause ? 'pause' : 'resume'} ${key}: ${(e as Error).message}`);
    }
  }

  /** Pauses (or resumes) fetching a task's input partitions: paused while it starts. */
  private pauseTask(id: string, pause: boolean): void {
    const partitions = this.taskPartitions.get(id);
    if (!pause) for (const p of partitions ?? []) this.backPressured.delete(`${p.topic}:${p.partition}`);
    if (partitions === undefined || partitions.length === 0 || this.consumer === undefined) return;
    const byTopic = partitions.map((p) => ({ topic: p.topic, partitions: [p.partition] }));
    try {
      if (pause) this.consumer.pause(byTopic);
      else this.consumer.resume(byTopic);
    } catch (e) {
      // The consumer is being replaced: the new one starts unpaused and tasks seek when they run.
      this.config.logger.warn(`could not ${pause ? 'pause' : 'resume'} task ${id}: ${(e as Error).message}`);
    }
  }

  /**
   * kafkajs has no enforceRebalance. The next eachBatch throws an error kafkajs treats as "the group
   * is rebalancing", and its runner rejoins with our member id; if no batch arrives (no data), the
   * consumer is replaced after a short wait, which rejoins as a new member.
   */
  private requestRejoin(reason: string): void {
    if (this.rejoinReason !== undefined) return;
    this.rejoinReason = reason;
    this.setState('REBALANCING');
    this.config.logger.warn(`rejoining the group: ${reason}`);
    this.rejoinFallback = setTimeout(() => {
      if (this.rejoinReason === undefined || !this.isActive() || this.closingDown) return;
      this.config.logger.warn('no fetch arrived to rejoin from; starting a new consumer');
      this.replaceConsumer(new Error(`rejoin requested: ${reason}`), true);
    }, Math.max(2_000, this.config.commitIntervalMs * 4));
  }

  /** Starts a new consumer after kafkajs gave up on the old one, retrying until brokerRetryTimeoutMs. */
  private replaceConsumer(err: unknown, forRejoin = false): void {
    const type = kafkaErrorType(err);
    const fix = type === undefined ? undefined : CONFIG_ERRORS[type];
    if (fix !== undefined) {
      void this.fail(new ConfigError(`The broker rejected the consumer (${type}): ${fix}.`, { cause: err }));
      return;
    }
    if (!forRejoin && this.giveUp(err)) {
      void this.fail(new StreamsError(`The consumer stopped and could not be restarted within brokerRetryTimeoutMs: ${(err as Error).message}`, { cause: err }));
      return;
    }
    this.config.logger.warn(`the consumer stopped (${(err as Error).message}); starting a new one`);
    const old = this.consumer;
    setTimeout(
      () => {
        if (!this.isActive() || this.closingDown || old !== this.consumer) return;
        void old?.disconnect().catch(() => undefined);
        this.startConsumer().catch((e: unknown) => this.replaceConsumer(e));
      },
      forRejoin ? 0 : 1_000,
    );
  }

  private taskIdFor(topic: string, partition: number): string | undefined {
    const sub = this.topology.subtopologyFor(topic, this.config.applicationId);
    return sub === undefined ? undefined : taskIdOf(sub.id, partition);
  }

  private onAssignment(assignment: Record<string, number[]>, memberId: string): void {
    if (this.closingDown || !this.isActive()) return;
    // A new member id means the group had removed us (a zombie: frozen, or cut off longer than the
    // session timeout) and others may have owned our tasks meanwhile: every task we still have is
    // closed without committing and, if assigned again, started afresh (fence, read offsets, restore).
    const rejoined = this.memberId !== undefined && memberId !== this.memberId;
    this.memberId = memberId;
    this.rejoinReason = undefined;
    if (this.rejoinFallback) clearTimeout(this.rejoinFallback);
    const wanted = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const p of partitions) {
        const id = this.taskIdFor(topic, p);
        if (id !== undefined) wanted.add(id);
      }
    }
    this.manager.assign(wanted, rejoined);
    if (this.config.numStandbyReplicas > 0) void this.syncStandbys(memberId, wanted);
  }

  /** Whether a task has change-logged stores (only those get standbys). */
  private isStateful(taskId: string): boolean {
    const sub = this.topology.subtopologies[Number(taskId.split('_')[0])];
    return (sub?.stores ?? []).some((name) => this.topology.stores.get(name)?.logging === true);
  }

  /**
   * The standby tasks of our assignment: kafkajs does not hand members their assignment's userData,
   * so it is read from the coordinator (describeGroups). Standbys no longer assigned are closed; new
   * ones start once an active instance of the task in this process has let go of its directory.
   */
  private async syncStandbys(memberId: string, active: ReadonlySet<string>): Promise<void> {
    let wanted: string[] = [];
    try {
      const { groups } = await this.admin!.describeGroups([this.config.applicationId]);
      const me = groups[0]?.members.find((m) => m.memberId === memberId);
      if (me === undefined) return; // the group moved on; the next assignment syncs again
      wanted = decodeMemberInfo(AssignerProtocol.MemberAssignment.decode(me.memberAssignment)?.userData).standby;
    } catch (e) {
      this.config.logger.warn(`could not read the standby assignment: ${(e as Error).message}`);
      return;
    }
    if (memberId !== this.memberId || this.closingDown || !this.isActive()) return;
    for (const [id, s] of [...this.standbys]) {
      if (wanted.includes(id) && !active.has(id)) continue;
      this.standbys.delete(id);
      void s.close();
    }
    for (const id of wanted) {
      if (this.standbys.has(id) || active.has(id)) continue;
      const standby = new StandbyTask(id, {
        config: this.config,
        topology: this.topology,
        kafka: this.kafka,
        admin: this.admin!,
        pollMs: STANDBY_POLL_MS,
        onUpdated: (t, applied) => this.emit('task.standby.updated', () => ({ taskId: t.id, applied })),
      });
      this.standbys.set(id, standby);
      standby.start(this.manager.closedOf(id));
    }
  }

  private newTask(id: string): ActiveTask {
    const task = new ActiveTask(id, {
      config: this.config,
      topology: this.topology,
      kafka: this.kafka,
      admin: this.admin!,
      partitionsFor: (topic) => this.layout?.partitions.get(topic),
      topicLimits: this.topicLimits,
      restoreListener: {
        onRestoreStart: (p) => this.emit('task.restore.start', () => p),
        onBatchRestored: (p) => this.emit('task.restore.progress', () => p),
        onRestoreEnd: (p) => this.emit('task.restore.end', () => p),
      },
      commitConsumerOffsets: (offsets) => this.consumer!.commitOffsets(offsets),
      globalStores: this.global?.stores,
      onRecordDropped: (e) => {
        this.dropped.set(e.reason, (this.dropped.get(e.reason) ?? 0) + 1);
        this.emit('task.record.dropped', () => e);
      },
      onCommitted: (t, r) => {
        this.commits++;
        this.commitLatencySum += r.latencyMs;
        this.commitLatencyMax = Math.max(this.commitLatencyMax, r.latencyMs);
        this.emit('task.committed', () => ({ taskId: t.id, records: r.records, latencyMs: r.latencyMs, offsets: Object.fromEntries(t.lastCommitted) }));
      },
      onOffsetReset: (t, r) => {
        this.config.logger.warn(
          `task ${t.id}: the committed offset ${r.from} of ${r.topic}-${t.partition} is outside the partition (retention or deleteRecords removed records it had not read); reset to ${r.to} by autoOffsetReset '${r.policy}'`,
        );
        this.emit('task.offset.reset', () => ({ taskId: t.id, ...r }));
      },
    });
    task.onClosed = this.budget.register(task);
    if (this.asThread !== undefined) {
      const claim = this.asThread.claim(id);
      this.claims.set(id, claim);
      void task.closed.finally(() => {
        claim.release();
        if (this.claims.get(id) === claim) this.claims.delete(id);
      });
    }
    return task;
  }

  /** A fetch was out of range (retention overtook a task): the task decides where to continue. */
  private async onOutOfRange(topic: string, partition: number): Promise<number | undefined> {
    const id = this.taskIdFor(topic, partition);
    const task = id === undefined ? undefined : this.manager.get(id);
    if (task === undefined || task.state !== 'running') return undefined;
    return task.lock.run(() => task.resetOutOfRange(topic));
  }

  private isActive(): boolean {
    return this.current === 'RUNNING' || this.current === 'REBALANCING';
  }

  /**
   * Transient failures are retried for brokerRetryTimeoutMs, counted per task (a task that keeps
   * failing gives up even while others commit); configuration errors are not retried.
   */
  private giveUp(err: unknown, taskId = '*'): boolean {
    if (err instanceof StreamsError && !err.retriable) return true;
    const now = this.config.clock();
    const since = this.failingSince.get(taskId) ?? now;
    this.failingSince.set(taskId, since);
    return now - since > this.config.brokerRetryTimeoutMs;
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale() || this.closingDown) return;
    if (this.rejoinReason !== undefined) {
      // kafkajs' runner rejoins the group on this error type (our enforceRebalance).
      throw Object.assign(new KafkaJSError(`rejoin requested: ${this.rejoinReason}`, { retriable: true }), { type: 'REBALANCE_IN_PROGRESS' });
    }
    const id = this.taskIdFor(batch.topic, batch.partition);
    const task = id === undefined ? undefined : this.manager.get(id);
    // Never wait here for a task to start: its partitions are paused until it runs.
    if (task === undefined || task.state !== 'running') return;
    this.lag.set(`${batch.topic}-${batch.partition}`, Number(batch.offsetLag()));
    let overBudget = false;
    await task.lock.run(async () => {
      if (task.state !== 'running' || this.manager.get(task.id) !== task) return;
      const before = task.processed;
      try {
        // How far this partition can be read: the last stable offset under read_committed (an open
        // transaction upstream is not data to wait for), else the high watermark.
        const end = (this.config.processingGuarantee === 'exactly-once' ? lastStableOffsetOf(batch) : undefined) ?? Number(batch.highWatermark);
        if (!task.processBatch(batch.topic, fetchedOffsetOf(batch), Number(batch.lastOffset()), batch.messages, end)) {
          // Fetched from past the task's position (before a rewind): drop it and make sure a seek is pending.
          this.seekToPosition(task, batch.topic);
          return;
        }
      } catch (err) {
        await this.fail(err);
        return;
      }
      this.processedTotal += task.processed - before;
      this.emit('task.processed', () => ({
        taskId: task.id,
        topic: batch.topic,
        records: task.processed - before,
        e2eLatencyMs: Math.max(0, this.config.clock() - Number(batch.messages.at(-1)?.timestamp ?? this.config.clock())),
      }));
      resolveOffset(batch.lastOffset());
      if (task.overfull(batch.topic)) this.backPressure(task, batch.topic, true);
      overBudget = this.budget.exceeded();
      if (overBudget || this.config.clock() - task.lastCommitAt >= this.config.commitIntervalMs) await this.commitUnderLock(task);
    });
    // Over the memory cap: every task commits now, each under its own lock; fetching waits for it.
    if (overBudget) await this.commitTasks(this.manager.running().filter((t) => t !== task));
    await heartbeat().catch(() => undefined);
  }

  /**
   * Periodic: wall-clock punctuation, and commits of tasks whose interval has passed, each task under
   * its own lock (a task busy with a batch or a commit is looked at on the next tick).
   */
  private async tick(): Promise<void> {
    if (!this.isActive() || this.closingDown) return;
    const now = this.config.clock();
    await Promise.all(
      this.manager.running().map((t) => {
        if (t.lock.busy) return undefined;
        return t.lock.run(async () => {
          if (t.state !== 'running' || this.manager.get(t.id) !== t || this.closingDown) return;
          try {
            // Timestamp-ordered tasks whose idle wait ran out, and fetching resumed below the buffer limit.
            const before = t.processed;
            t.drain(now);
            this.processedTotal += t.processed - before;
            for (const topic of t.bufferState().drained) this.backPressure(t, topic, false);
            t.punctuate(now);
          } catch (err) {
            await this.fail(err);
            return;
          }
          if (now - t.lastCommitAt >= this.config.commitIntervalMs) await this.commitUnderLock(t);
        });
      }),
    );
  }

  /** Commits tasks in parallel (each has its own producer), each under its own lock. */
  private async commitTasks(tasks: readonly ActiveTask[]): Promise<void> {
    await Promise.all(tasks.map((task) => task.lock.run(() => this.commitUnderLock(task))));
  }

  /** Commits one task if it has pending work. Run it under the task's lock. */
  private async commitUnderLock(task: ActiveTask): Promise<void> {
    if (task.state !== 'running' || this.manager.get(task.id) !== task) return;
    if (!task.commitNeeded()) {
      task.lastCommitAt = this.config.clock();
      return;
    }
    try {
      await task.commit();
      this.replacements = 0;
      if (this.failingSince.size > 0) {
        this.failingSince.delete(task.id);
        this.failingSince.delete('*');
      }
    } catch (err) {
      // Closed meanwhile by another task's failure (a fencing closes them all, REPLACE_THREAD too):
      // the transaction was aborted, and the close waiting for this lock finishes the task.
      if (this.manager.get(task.id) !== task) return;
      await this.manager.onCommitFailure(task, err);
    }
  }

  /**
   * Kafka Streams' repartition purge: records of repartition topics below the committed offsets are
   * deleted (every repartitionPurgeIntervalMs), so that repartition topics, which keep records until
   * they are read (retention.ms=-1), do not grow without bound.
   */
  private async purgeRepartitionTopics(): Promise<void> {
    const admin = this.admin;
    const repartition = this.layout?.repartitionTopics;
    if (admin === undefined || repartition === undefined || repartition.size === 0 || !this.isActive()) return;
    const byTopic = new Map<string, { partition: number; offset: string }[]>();
    for (const task of this.manager.running()) {
      for (const [topic, offset] of task.lastCommitted) {
        if (!repartition.has(topic) || offset <= 0) continue;
        let list = byTopic.get(topic);
        if (list === undefined) byTopic.set(topic, (list = []));
        list.push({ partition: task.partition, offset: String(offset) });
      }
    }
    for (const [topic, partitions] of byTopic) {
      await admin.deleteTopicRecords({ topic, partitions }).catch((e: unknown) => {
        const denied = authorizationFailure(e) ?? (JSON.stringify((e as { partitions?: unknown }).partitions ?? '').includes('AUTHORIZATION') ? 'AUTHORIZATION_FAILED' : undefined);
        this.config.logger.warn(
          `purging ${topic} failed (retried next interval): ${(e as Error).message}${denied !== undefined ? `: not authorized: grant Delete on topics prefixed "${this.config.applicationId}-" (docs/security.md)` : ''}`,
        );
      });
    }
  }

  private async cleanStateDirs(): Promise<void> {
    await cleanUnownedTaskDirs({
      stateDir: this.config.stateDir,
      applicationId: this.config.applicationId,
      ownedTaskIds: [...this.manager.ids(), ...this.standbys.keys()],
      delayMs: this.config.stateCleanupDelayMs,
      now: this.config.clock(),
    }).catch((e: unknown) => this.config.logger.warn(`state directory cleanup failed: ${(e as Error).message}`));
  }

  private async fail(err: unknown): Promise<void> {
    if (this.current === 'ERROR' || this.current === 'PENDING_SHUTDOWN' || this.current === 'NOT_RUNNING') return;
    const error = err instanceof Error ? err : new Error(String(err));
    let response: 'REPLACE_THREAD' | 'SHUTDOWN_CLIENT' = 'SHUTDOWN_CLIENT';
    try {
      response = this.config.uncaughtExceptionHandler?.(error) ?? 'SHUTDOWN_CLIENT';
    } catch (e) {
      this.config.logger.error(`uncaughtExceptionHandler threw (${(e as Error).message}); shutting down`);
    }
    if (response === 'REPLACE_THREAD' && this.replacements < 10 && !this.closingDown) {
      this.replacements++;
      this.config.logger.warn(`replacing the stream thread after: ${error.message} (replacement ${this.replacements} of at most 10 in a row)`);
      this.emit('error', () => ({ error }));
      this.manager.closeAllDirty();
      this.replaceConsumer(error, true);
      return;
    }
    this.fatalError = error;
    this.config.logger.error(`stopping: ${error.message}`);
    this.setState('ERROR');
    this.emit('error', () => ({ error }));
    this.stopTimers();
    // Nothing of the failed transaction commits. Every connection and timer goes, so that the
    // process can exit (or a supervisor restart it): an app in ERROR does not linger.
    // fail() may run inside eachBatch (under a task's lock): the consumer's disconnect waits for that
    // eachBatch to return, so it is not awaited here; close() awaits it.
    this.disconnected = (async () => {
      await this.manager.failAll();
      await this.closeStandbys();
      await this.consumer?.disconnect().catch(() => undefined);
      await this.global?.close();
      await this.admin?.disconnect().catch(() => undefined);
    })();
  }

  /** Set by fail(): resolves when every connection of the failed app is closed. */
  private disconnected: Promise<void> | undefined;

  private async closeStandbys(): Promise<void> {
    const all = [...this.standbys.values()];
    this.standbys.clear();
    await Promise.allSettled(all.map((s) => s.close()));
  }

  private stopTimers(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.cleanupTimer) clearInterval(this.cleanupTimer);
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    if (this.rejoinFallback) clearTimeout(this.rejoinFallback);
    this.timer = this.cleanupTimer = this.purgeTimer = this.rejoinFallback = undefined;
    this.unregisterOutOfRange?.();
  }

  /**
   * Commits and checkpoints every task, then leaves the group and disconnects. Commit first, leave
   * after: leaving first lets the new owner fence the final commits.
   */
  async close(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.current === 'NOT_RUNNING' || this.current === 'PENDING_SHUTDOWN') return;
    const wasStarted = this.current !== 'CREATED';
    this.closingDown = true;
    this.setState('PENDING_SHUTDOWN');
    this.stopTimers();
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const work = (async () => {
      if (!wasStarted) return;
      if (this.threads !== undefined) {
        await this.threads.close(timeoutMs);
        return;
      }
      if (this.disconnected !== undefined) {
        await this.disconnected; // failed: nothing to commit, connections are closing
        return;
      }
      const consumer = this.consumer;
      if (consumer !== undefined && this.layout !== undefined) {
        try {
          consumer.pause(this.layout.sourceTopics.map((topic) => ({ topic })));
        } catch {
          /* not running */
        }
      }
      await this.manager.closeAll();
      await this.closeStandbys();
      await consumer?.disconnect().catch(() => undefined);
      await this.global?.close();
      await this.admin?.disconnect().catch(() => undefined);
    })();
    let timer: NodeJS.Timeout | undefined;
    work.catch((e: unknown) => this.config.logger.warn(`close: ${(e as Error).message}`)); // never an unhandled rejection, even after the timeout
    await Promise.race([work.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
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
    if (this.threads !== undefined) return this.threads.metrics(this.current);
    const now = this.config.clock();
    const samples = this.rateSamples;
    samples.push([now, this.processedTotal]);
    while (samples.length > 2 && now - samples[1]![0] >= 10_000) samples.shift();
    const [t0, n0] = samples.length > 1 ? samples[0]! : [this.startedAt, 0];
    const windowMs = Math.max(1, now - t0);
    return {
      state: this.current,
      tasks: this.manager.ids().sort(),
      standbyTasks: [...this.standbys.keys()].sort(),
      recordsProcessed: this.processedTotal,
      recordsPerSecond: ((this.processedTotal - n0) * 1000) / windowMs,
      droppedRecords: Object.fromEntries(this.dropped),
      commits: this.commits,
      commitLatencyAvgMs: this.commits === 0 ? 0 : this.commitLatencySum / this.commits,
      commitLatencyMaxMs: this.commitLatencyMax,
      lag: Object.fromEntries(this.lag),
    };
  }
}

/**
 * Makes the process exit non-zero when the app goes to ERROR (after closing it), and close the app
 * on SIGTERM / SIGINT, so that a supervisor (systemd, Kubernetes) restarts it:
 *
 *   exitOnError(app); await app.start();
 */
export function exitOnError(app: KafkaStreams, opts: { exit?: (code: number) => void; signals?: readonly NodeJS.Signals[] } = {}): () => void {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const offState = app.on('app.state', ({ to }) => {
    // After the ERROR event has reached every listener.
    if (to === 'ERROR') setImmediate(() => void app.close({ timeoutMs: 10_000 }).finally(() => exit(1)));
  });
  const onSignal = (): void => void app.close({ timeoutMs: 30_000 }).finally(() => exit(app.health().error === undefined ? 0 : 1));
  const signals = opts.signals ?? ['SIGTERM', 'SIGINT'];
  for (const s of signals) process.once(s, onSignal);
  return () => {
    offState();
    for (const s of signals) process.off(s, onSignal);
  };
}

/** Task ids ordered by partition, then sub-topology: 0_0 1_0 0_1 1_1 ... */
function byPartition(ids: readonly string[]): string[] {
  const key = (id: string): [number, number] => {
    const [sub, partition] = id.split('_');
    return [Number(partition), Number(sub)];
  };
  return [...ids].sort((a, b) => {
    const [pa, sa] = key(a);
    const [pb, sb] = key(b);
    return pa - pb || sa - sb;
  });
}

/** admin.connect(), bounded: kafkajs' own retries would otherwise decide how long start() waits. */
async function connectWithin(admin: Admin, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    let timer: NodeJS.Timeout | undefined;
    // The attempt may fail after the race is decided (the timer won): its rejection must not go
    // unhandled, which would kill the process.
    const attempt = admin.connect();
    attempt.catch(() => undefined);
    try {
      await Promise.race([
        attempt,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), Math.max(1, deadline - Date.now())))),
      ]);
      return;
    } catch (e) {
      last = e;
    } finally {
      clearTimeout(timer);
    }
    await new Promise((r) => setTimeout(r, Math.min(1_000, Math.max(0, deadline - Date.now()))));
  }
  throw last instanceof Error ? last : new Error(String(last ?? 'timed out'));
}
