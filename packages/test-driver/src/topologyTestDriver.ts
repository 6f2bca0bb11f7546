/**
 * TopologyTestDriver: runs a Topology in-process, synchronously, with no broker. It creates the
 * same StreamTask (from `@vltava/executor`) and the same store stack (`@vltava/state`, memory
 * backend) that the Kafka runtime uses; only the I/O is swapped for in-memory topics and a
 * controllable wall clock.
 */
import {
  ConfigError,
  defaultPartition,
  type CollectedRecord,
  type KeyValue,
  type KeyValueStore,
  type RecordCollector,
  type RecordHeaders,
  type SessionStore,
  type StateStore,
  type StoreSpec,
  type WindowStore,
  type Topology,
  topicName,
  type VersionedKeyValueStore,
  type Versions,
  versionedView,
} from '@vltava/dsl';
import {
  GlobalStateTask,
  StreamTask,
  type DeserializationExceptionHandler,
  type ProcessingExceptionHandler,
  type RecordDroppedEvent,
  type TaskLogger,
  type TaskMetrics,
} from '@vltava/executor';
import { openTaskStoresSync, type TaskStores } from '@vltava/state';
import { plainKeyValueStore, plainWindowStore } from './plainStoreViews.js';
import { CapturedTopic, TestOutputTopic, type OutputTopicOptions } from './testOutputTopic.js';
import { TestInputTopic, type InputSink, type InputTopicOptions } from './testInputTopic.js';

export interface TopologyTestDriverConfig {
  /** Default "test-app". Internal topics are `<applicationId>-<name>-repartition|changelog`. */
  readonly applicationId?: string;
  /** Partition count per topic (use full names for internal topics). Default: `defaultPartitions`. */
  readonly partitions?: Readonly<Record<string, number>>;
  /** Partitions of every topic not named in `partitions` (default 1). Repartition topics default to their writer's input partitions. */
  readonly defaultPartitions?: number;
  /** The wall clock's start, in epoch ms (default 0). */
  readonly initialWallClockTimeMs?: number;
  readonly deserializationExceptionHandler?: DeserializationExceptionHandler;
  /** `'fail'` (default) or `'log-and-continue'` for exceptions thrown by user code. */
  readonly processingExceptionHandler?: ProcessingExceptionHandler;
  /** Receives warnings (e.g. skipped records); default: none. */
  readonly logger?: TaskLogger;
  /**
   * Record cache bytes per task. Default 0: no cache, so every update of a table or aggregation
   * is emitted at once. With a cache, such updates are collapsed to one per key per commit (the
   * driver commits after each pipe call), as in production.
   */
  readonly cacheMaxBytes?: number;
  /** Called for every record an operator drops on purpose (late records, null keys, duplicates, ...). */
  readonly onRecordDropped?: (event: RecordDroppedEvent) => void;
}

interface TopicState {
  readonly name: string;
  /** Records the topology wrote to this topic (not counting piped input). */
  produced: number;
  readonly partitions: number;
  readonly nextOffset: number[];
  roundRobin: number;
  /** Sub-topology reading this topic, if any. */
  readonly reader: number | undefined;
  /** Records kept for output topics; repartition topics are only kept once createOutputTopic asks. */
  captured: CapturedTopic | undefined;
}

interface DriverTask {
  readonly task: StreamTask;
  readonly stores: TaskStores;
}

/** `TopicState.reader` of a global table's topic. */
const GLOBAL = -1;

/** The fields of a record waiting to be processed (the rest is in the queue's parallel arrays). */
interface PendingRecord {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly timestamp: number;
  readonly headers?: RecordHeaders | undefined;
}

/** A mutable InputRecord: the driver hands one object to every task.process call (none keeps it). */
interface ScratchRecord {
  topic: string;
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: number;
  headers: RecordHeaders | undefined;
}

export class TopologyTestDriver {
  readonly applicationId: string;
  private readonly topology: Topology;
  private readonly topics = new Map<string, TopicState>();
  /** tasks[subtopology][partition] */
  private readonly tasks: DriverTask[][] = [];
  /**
   * Records waiting to be processed, in order: parallel arrays (no object per record beyond the
   * collected one), `pendingLength` entries from `pendingPos`.
   */
  private pendingRecords: PendingRecord[] = [];
  private pendingTopics: TopicState[] = [];
  private pendingPartitions: number[] = [];
  private pendingOffsets: number[] = [];
  private pendingLength = 0;
  private pendingPos = 0;
  private draining = false;
  private readonly scratch: ScratchRecord = { topic: '', partition: 0, offset: 0, key: null, value: null, timestamp: 0, headers: undefined };
  private wallClockMs: number;
  private depth = 0;
  private closed = false;
  private readonly config: TopologyTestDriverConfig;
  private readonly collector: RecordCollector;
  private readonly global: { readonly task: GlobalStateTask; readonly stores: TaskStores } | undefined;

  constructor(topology: Topology, config: TopologyTestDriverConfig = {}) {
    this.topology = topology;
    this.config = config;
    this.applicationId = config.applicationId ?? 'test-app';
    this.wallClockMs = config.initialWallClockTimeMs ?? 0;
    const defaultPartitions = config.defaultPartitions ?? 1;
    const explicit = config.partitions ?? {};
    for (const [t, n] of [['defaultPartitions', defaultPartitions] as const, ...Object.entries(explicit)]) {
      if (!Number.isInteger(n) || n < 1) throw new ConfigError(`TopologyTestDriver: partitions of "${t}" must be a positive integer, got ${String(n)}.`);
    }
    const appId = this.applicationId;
    const subs = topology.subtopologies;
    const isInternal = new Set(topology.internalTopics(appId).map((t) => t.name));
    const plan = topology.partitionPlan(appId, (t) => explicit[t] ?? (isInternal.has(t) ? undefined : defaultPartitions));
    for (const sub of subs) {
      for (const t of sub.sources) this.topicState(topicName(t, appId), plan.topics.get(topicName(t, appId)), sub.id);
    }
    this.collector = { send: (r) => this.collect(r) };
    if (topology.globalTables.length > 0) {
      const stores = openTaskStoresSync({
        applicationId: appId,
        taskId: 'global',
        partition: 0,
        specs: topology.globalStoreSpecs(),
        collector: this.collector,
        backend: 'memory',
        recordTimestamp: () => this.wallClockMs,
        cacheMaxBytes: 0,
      });
      this.global = { task: new GlobalStateTask({ topology, stores, ...(config.logger === undefined ? {} : { logger: config.logger }) }), stores };
      for (const g of topology.globalTables) this.topicState(g.topic, explicit[g.topic] ?? defaultPartitions, GLOBAL);
    } else {
      this.global = undefined;
    }

    for (const sub of subs) {
      const n = plan.tasks[sub.id]!;
      const specs: StoreSpec[] = topology.storeSpecs(sub.id);
      const row: DriverTask[] = [];
      for (let p = 0; p < n; p++) {
        let task: StreamTask | undefined;
        const stores = openTaskStoresSync({
          applicationId: appId,
          taskId: `${sub.id}_${p}`,
          partition: p,
          specs,
          collector: this.collector,
          backend: 'memory',
          recordTimestamp: () => task?.currentRecordTimestamp() ?? this.wallClockMs,
          cacheMaxBytes: config.cacheMaxBytes ?? 0,
        });
        for (const s of specs) if (s.logging) this.topicState(stores.changelogTopic(s.name), plan.topics.get(stores.changelogTopic(s.name)), undefined);
        task = new StreamTask({
          topology,
          subtopology: sub.id,
          partition: p,
          applicationId: appId,
          stores,
          collector: this.collector,
          wallClock: () => this.wallClockMs,
          ...(config.deserializationExceptionHandler === undefined ? {} : { deserializationExceptionHandler: config.deserializationExceptionHandler }),
          ...(config.processingExceptionHandler === undefined ? {} : { processingExceptionHandler: config.processingExceptionHandler }),
          ...(config.logger === undefined ? {} : { logger: config.logger }),
          ...(config.onRecordDropped === undefined ? {} : { onRecordDropped: config.onRecordDropped }),
          partitionsFor: (t) => this.topicState(t).partitions,
          ...(this.global === undefined ? {} : { globalStores: this.global.stores }),
        });
        row.push({ task, stores });
      }
      this.tasks.push(row);
    }
  }

  private topicState(name: string, partitions?: number, reader?: number): TopicState {
    // the lookup on its own: the closure below would cost a context allocation on every call
    return this.topics.get(name) ?? this.newTopicState(name, partitions, reader);
  }

  private newTopicState(name: string, partitions: number | undefined, reader: number | undefined): TopicState {
    let t = this.topics.get(name);
    if (t === undefined) {
      const n = partitions ?? this.config.partitions?.[name] ?? this.config.defaultPartitions ?? 1;
      const repartition = this.topology.repartitionTopics.some((x) => `${this.applicationId}-${x.name}` === name);
      t = { name, produced: 0, partitions: n, nextOffset: new Array<number>(n).fill(0), roundRobin: 0, reader, captured: repartition ? undefined : new CapturedTopic() };
      this.topics.set(name, t);
    }
    return t;
  }

  private partitionFor(t: TopicState, key: Buffer | null, explicit: number | undefined): number {
    if (explicit !== undefined) {
      if (!Number.isInteger(explicit) || explicit < 0 || explicit >= t.partitions) {
        throw new ConfigError(`Record for "${t.name}" names partition ${explicit}, but the topic has ${t.partitions}.`);
      }
      return explicit;
    }
    if (t.partitions === 1) return 0;
    if (key === null) return t.roundRobin++ % t.partitions;
    return defaultPartition(key, t.partitions);
  }

  /** Everything the tasks produce: outputs, repartition, changelog and dead-letter records. */
  private collect(r: CollectedRecord): void {
    const t = this.topicState(r.topic);
    const partition = this.partitionFor(t, r.key, r.partition);
    const offset = t.nextOffset[partition]!++;
    t.produced++;
    if (t.reader !== undefined) this.enqueue(t, partition, offset, r);
    t.captured?.push(r, partition, offset);
  }

  private enqueue(t: TopicState, partition: number, offset: number, r: PendingRecord): void {
    const i = this.pendingLength++;
    this.pendingRecords[i] = r;
    this.pendingTopics[i] = t;
    this.pendingPartitions[i] = partition;
    this.pendingOffsets[i] = offset;
  }

  private clearPending(): void {
    // keep the arrays' capacity; drop the references to processed records
    this.pendingRecords.fill(undefined as unknown as PendingRecord, 0, this.pendingLength);
    this.pendingLength = 0;
    this.pendingPos = 0;
  }

  private checkOpen(): void {
    if (this.closed) throw new ConfigError('The TopologyTestDriver is closed.');
  }

  private drain(): void {
    // A nested drain (user code piping input from inside a processor) must not reuse the record
    // the outer one is processing.
    const nested = this.draining;
    this.draining = true;
    try {
      while (this.pendingPos < this.pendingLength) {
        const i = this.pendingPos++;
        const t = this.pendingTopics[i]!;
        const r = this.pendingRecords[i]!;
        const partition = this.pendingPartitions[i]!;
        const rec: ScratchRecord = nested ? { topic: '', partition: 0, offset: 0, key: null, value: null, timestamp: 0, headers: undefined } : this.scratch;
        rec.topic = t.name;
        rec.partition = partition;
        rec.offset = this.pendingOffsets[i]!;
        rec.key = r.key;
        rec.value = r.value;
        rec.timestamp = r.timestamp;
        rec.headers = r.headers;
        if (t.reader === GLOBAL) {
          this.global!.task.process(rec);
          continue;
        }
        const task = this.tasks[t.reader!]![partition];
        if (task === undefined) {
          throw new ConfigError(`No task for ${t.name} partition ${partition}: the topic has more partitions than its sub-topology's tasks.`);
        }
        task.task.process(rec);
      }
    } finally {
      this.draining = nested;
      if (!nested) {
        this.scratch.key = null;
        this.scratch.value = null;
        this.scratch.headers = undefined;
      }
    }
    this.clearPending();
  }

  /** Flushes caches and commits every task with pending work, until nothing is left to process. */
  private commit(): void {
    for (let round = 0; round < 100; round++) {
      this.drain();
      let any = false;
      for (const row of this.tasks) {
        for (const { task, stores } of row) {
          if (!task.commitNeeded) continue;
          any = true;
          task.prepareCommit();
          const offsets = new Map<string, number>();
          for (const s of task.subtopology.stores) {
            const spec = this.topology.stores.get(s)!;
            if (!spec.logging) continue;
            const t = this.topics.get(stores.changelogTopic(s));
            const next = t?.nextOffset[task.partition] ?? 0;
            if (next > 0) offsets.set(s, next - 1);
          }
          stores.commitSync(offsets);
          task.markCommitted();
        }
      }
      if (this.global !== undefined) this.global.stores.commitSync(new Map());
      if (!any && this.pendingPos >= this.pendingLength) return;
    }
    throw new ConfigError('TopologyTestDriver: commits keep producing records to process (a cycle through topics?).');
  }

  private sink: InputSink = {
    pipe: (topic, key, value, timestamp, headers) => {
      const t = this.topics.get(topic);
      if (t === undefined || t.reader === undefined) {
        throw new ConfigError(`The topology does not read topic "${topic}"; it reads [${[...this.topology.sourceTopics(), ...this.topology.globalTopics()].join(', ')}]. Create input topics only for those.`);
      }
      const partition = this.partitionFor(t, key, undefined);
      const offset = t.nextOffset[partition]!++;
      this.enqueue(t, partition, offset, { key, value, timestamp, headers });
      this.drain();
    },
    batch: (fn) => {
      this.checkOpen();
      this.depth++;
      try {
        fn();
      } catch (err) {
        this.clearPending();
        throw err;
      } finally {
        this.depth--;
      }
      if (this.depth === 0) this.commit();
    },
  };

  createInputTopic<K, V>(name: string, opts: InputTopicOptions<K, V>): TestInputTopic<K, V> {
    this.checkOpen();
    const t = this.topics.get(name);
    if (t === undefined || t.reader === undefined) {
      throw new ConfigError(`createInputTopic: the topology does not read topic "${name}"; it reads [${[...this.topology.sourceTopics(), ...this.topology.globalTopics()].join(', ')}].`);
    }
    return new TestInputTopic<K, V>(name, this.sink, opts.keySerde, opts.valueSerde, opts.startTimestamp ?? this.config.initialWallClockTimeMs ?? 0, opts.autoAdvanceMs ?? 0);
  }

  /** Reads a topic the topology writes (sink, dead-letter, changelog: `<appId>-<store>-changelog`). */
  createOutputTopic<K, V>(name: string, opts: OutputTopicOptions<K, V>): TestOutputTopic<K, V> {
    this.checkOpen();
    const t = this.topicState(name);
    t.captured ??= new CapturedTopic();
    return new TestOutputTopic<K, V>(name, t.captured, opts.keySerde, opts.valueSerde);
  }

  private storeParts<S>(name: string, kind: StoreSpec['kind'], getter: string): { spec: StoreSpec; parts: S[] } {
    this.checkOpen();
    const spec = this.topology.stores.get(name);
    if (spec === undefined || spec.kind !== kind) {
      const names = [...this.topology.stores.values()].filter((s) => s.kind === kind).map((s) => s.name);
      throw new ConfigError(`${getter}: no ${kind === 'keyValue' ? 'key-value' : kind} store "${name}"; the topology has [${names.join(', ')}].`);
    }
    const sub = this.topology.subtopologies.find((s) => s.stores.includes(name))!;
    return { spec, parts: this.tasks[sub.id]!.map((t) => t.stores.getStore(name) as S) };
  }

  /** The partition of a store key: the task that holds it. */
  private ownerOf<K, S>(spec: StoreSpec, parts: S[], key: K): S {
    return parts[defaultPartition((spec.keySerde as StoreSpec<K>['keySerde']).serialize(key), parts.length)]!;
  }

  /**
   * A key-value store by name. With one partition this is the task's store itself. With several,
   * a view over all tasks' stores: lookups and writes go to the partition of the key (murmur2 of
   * the serialized key, as the records would be), scans cover every partition.
   */
  getKeyValueStore<K, V>(name: string): KeyValueStore<K, V> {
    if (this.global !== undefined && this.topology.globalTables.some((g) => g.name === name)) {
      this.checkOpen();
      return this.global.stores.getStore<KeyValueStore<K, V>>(name);
    }
    const view = this.kvView<K, V>(name, 'getKeyValueStore');
    const spec = view.spec;
    if (spec.versionedHistoryRetentionMs !== undefined) {
      throw new ConfigError(`getKeyValueStore: store "${name}" is versioned (it keeps each key's history); use getVersionedKeyValueStore("${name}").`);
    }
    const parts = spec.timestamped === true ? view.parts.map((p) => plainKeyValueStore(p as unknown as KeyValueStore<K, { value: V; timestamp: number }>)) : view.parts;
    if (parts.length === 1) return parts[0]!;
    const owner = (key: K): KeyValueStore<K, V> => this.ownerOf(spec, parts, key);
    return {
      name,
      get: (key) => owner(key).get(key),
      range: (from, to) => parts.flatMap((p) => [...p.range(from, to)]),
      all: () => parts.flatMap((p) => [...p.all()]),
      prefixScan: (prefix, serde) => parts.flatMap((p) => [...p.prefixScan(prefix, serde)]),
      approximateNumEntries: () => parts.reduce((n, p) => n + p.approximateNumEntries(), 0),
      put: (key, value) => owner(key).put(key, value),
      putIfAbsent: (key, value) => owner(key).putIfAbsent(key, value),
      putAll: (entries: Iterable<KeyValue<K, V>>) => {
        for (const e of entries) owner(e.key).put(e.key, e.value);
      },
      delete: (key) => owner(key).delete(key),
    };
  }

  /**
   * The versioned store of a versioned table (`builder.table(topic, { versioned })`): `get(key)` is
   * the latest row, `get(key, asOf)` the row valid at `asOf`. One partition only.
   */
  getVersionedKeyValueStore<K, V>(name: string): VersionedKeyValueStore<K, V> {
    const { spec, parts } = this.storeParts<KeyValueStore<K, Versions<V>>>(name, 'keyValue', 'getVersionedKeyValueStore');
    const retention = spec.versionedHistoryRetentionMs;
    if (retention === undefined) throw new ConfigError(`getVersionedKeyValueStore: store "${name}" is not versioned; use getKeyValueStore or getTimestampedKeyValueStore.`);
    return versionedView(parts[0]!, retention);
  }

  private kvView<K, V>(name: string, getter: string): { spec: StoreSpec; parts: KeyValueStore<K, V>[] } {
    return this.storeParts<KeyValueStore<K, V>>(name, 'keyValue', getter);
  }

  /**
   * The key-value store of a table or an aggregation with each value's timestamp (the timestamp of
   * the row's latest result, as Kafka Streams' getTimestampedKeyValueStore). One partition only.
   */
  getTimestampedKeyValueStore<K, V>(name: string): KeyValueStore<K, { readonly value: V; readonly timestamp: number }> {
    const { spec, parts } = this.storeParts<KeyValueStore<K, { readonly value: V; readonly timestamp: number }>>(name, 'keyValue', 'getTimestampedKeyValueStore');
    if (spec.timestamped !== true) throw new ConfigError(`getTimestampedKeyValueStore: store "${name}" holds plain values; use getKeyValueStore.`);
    return parts[0]!;
  }

  /** The window store of a windowed aggregation with each window's timestamp (the largest of its records). One partition only. */
  getTimestampedWindowStore<K, V>(name: string): WindowStore<K, { readonly value: V; readonly timestamp: number }> {
    const { spec, parts } = this.storeParts<WindowStore<K, { readonly value: V; readonly timestamp: number }>>(name, 'window', 'getTimestampedWindowStore');
    if (spec.timestamped !== true) throw new ConfigError(`getTimestampedWindowStore: store "${name}" holds plain values; use getWindowStore.`);
    return parts[0]!;
  }

  /** A window store by name (see getKeyValueStore for several partitions). */
  getWindowStore<K, V>(name: string): WindowStore<K, V> {
    const view = this.storeParts<WindowStore<K, V>>(name, 'window', 'getWindowStore');
    const spec = view.spec;
    const parts = spec.timestamped === true ? view.parts.map((p) => plainWindowStore(p as unknown as WindowStore<K, { value: V; timestamp: number }>)) : view.parts;
    if (parts.length === 1) return parts[0]!;
    const owner = (key: K): WindowStore<K, V> => this.ownerOf(spec, parts, key);
    return {
      name,
      fetch: (key, windowStart) => owner(key).fetch(key, windowStart),
      fetchRange: (key, from, to) => owner(key).fetchRange(key, from, to),
      fetchAll: (from, to) => parts.flatMap((p) => [...p.fetchAll(from, to)]),
      all: () => parts.flatMap((p) => [...p.all()]),
      put: (key, value, windowStart) => owner(key).put(key, value, windowStart),
    };
  }

  /** A session store by name (see getKeyValueStore for several partitions). */
  getSessionStore<K, V>(name: string): SessionStore<K, V> {
    const { spec, parts } = this.storeParts<SessionStore<K, V>>(name, 'session', 'getSessionStore');
    if (parts.length === 1) return parts[0]!;
    const owner = (key: K): SessionStore<K, V> => this.ownerOf(spec, parts, key);
    return {
      name,
      findSessions: (key, earliestEnd, latestStart) => owner(key).findSessions(key, earliestEnd, latestStart),
      fetchSession: (key, start, end) => owner(key).fetchSession(key, start, end),
      put: (session, value) => owner(session.key).put(session, value),
      remove: (session) => owner(session.key).remove(session),
    };
  }

  /** Advances the wall clock, fires due wall-clock punctuators, processes what they produce and commits. */
  advanceWallClockTime(ms: number): void {
    this.checkOpen();
    if (!(ms >= 0)) throw new RangeError(`advanceWallClockTime: ms must be >= 0, got ${ms}`);
    this.wallClockMs += ms;
    for (const row of this.tasks) for (const { task } of row) task.punctuateWallClock(this.wallClockMs);
    this.commit();
  }

  wallClockTime(): number {
    return this.wallClockMs;
  }

  /** Names of the topics the topology has written to (outputs, repartition, changelog, dead-letter). */
  producedTopicNames(): string[] {
    return [...this.topics.values()].filter((t) => t.produced > 0).map((t) => t.name);
  }

  /** Any store by name, as the processor API sees it (one partition: the task's store; else partition 0's unless given). */
  getStateStore<S extends StateStore = StateStore>(name: string, partition = 0): S {
    this.checkOpen();
    const sub = this.topology.subtopologies.find((s) => s.stores.includes(name));
    const task = sub === undefined ? undefined : this.tasks[sub.id]![partition];
    if (task === undefined) {
      throw new ConfigError(`getStateStore: no store "${name}" in partition ${partition}; the topology has [${[...this.topology.stores.keys()].join(', ')}].`);
    }
    return task.stores.getStore<S>(name);
  }

  /** The number of partitions of a topic, as the driver models it. */
  partitionsOf(topic: string): number {
    return this.topicState(topic).partitions;
  }

  /** Metrics summed over all tasks (dropped records, deserialization errors, ...). */
  metrics(): TaskMetrics {
    let processed = 0;
    let dropped = 0;
    let deserializationErrors = 0;
    let processingErrors = 0;
    let punctuations = 0;
    const droppedByReason = new Map<string, number>();
    for (const row of this.tasks) {
      for (const { task } of row) {
        const m = task.metrics();
        processed += m.processed;
        dropped += m.dropped;
        deserializationErrors += m.deserializationErrors;
        processingErrors += m.processingErrors;
        punctuations += m.punctuations;
        for (const [r, n] of m.droppedByReason) droppedByReason.set(r, (droppedByReason.get(r) ?? 0) + n);
      }
    }
    return { processed, dropped, droppedByReason, deserializationErrors, processingErrors, punctuations };
  }

  /** Closes every task (processors, then stores). Further calls throw. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    let first: unknown;
    for (const row of this.tasks) {
      for (const { task, stores } of row) {
        try {
          task.close();
        } catch (err) {
          first ??= err;
        }
        stores.abort();
        void stores.close().catch(() => undefined);
      }
    }
    if (this.global !== undefined) {
      this.global.stores.abort();
      void this.global.stores.close().catch(() => undefined);
    }
    if (first !== undefined) throw first;
  }
}
