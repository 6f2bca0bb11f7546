/**
 * The one validated configuration of a KafkaStreams app, with documented defaults
 * (docs/runtime.md has the reference table). Contradictions fail at construction with a ConfigError
 * that says what to change.
 */
import { ConfigError } from '@vltava/dsl';
import type { KafkaConfig } from 'kafkajs';
import type { DeserializationExceptionHandler, ProcessingExceptionHandler, TaskLogger } from '@vltava/executor';

export type ProcessingGuarantee = 'exactly-once' | 'at-least-once';

export type { ProcessingExceptionHandler } from '@vltava/executor';
export type { ProductionExceptionHandler } from './kafka/productionGuard.js';
import type { ProductionExceptionHandler } from './kafka/productionGuard.js';

/** Points between the steps of the commit protocol, for fault-injection tests (`faultInjection`). */
export type CommitPoint = 'before-send' | 'after-send' | 'after-offsets' | 'after-commit' | 'after-checkpoint';

export interface Logger extends TaskLogger {
  info(message: string, meta?: Readonly<Record<string, unknown>>): void;
  error(message: string, meta?: Readonly<Record<string, unknown>>): void;
  /** Called only at logLevel 'debug'. */
  debug?(message: string, meta?: Readonly<Record<string, unknown>>): void;
}

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export type UncaughtExceptionResponse = 'REPLACE_THREAD' | 'SHUTDOWN_CLIENT';

export interface StreamsConfig {
  /** Consumer group id, transactional id prefix, internal topic prefix, state dir name. Required. */
  readonly applicationId: string;
  /** Bootstrap brokers, e.g. ['127.0.0.1:9092']. Required. */
  readonly brokers: readonly string[];
  /** Passed through to kafkajs: ssl, sasl, clientId, connectionTimeout, requestTimeout, retry, logLevel... */
  readonly kafka?: Omit<KafkaConfig, 'brokers'>;
  /** Default 'exactly-once'. */
  readonly processingGuarantee?: ProcessingGuarantee;
  /** How often each task commits. Default 100 ms under exactly-once, 30 000 ms under at-least-once. */
  readonly commitIntervalMs?: number;
  /** Root of local state: `<stateDir>/<applicationId>/<taskId>`. Default `./.vltava-state`. */
  readonly stateDir?: string;
  /** Transaction timeout of the task producers. Default 60 000 ms. Must exceed commitIntervalMs. */
  readonly transactionTimeoutMs?: number;
  /** Record cache per task, in bytes (0 disables caching). Default 10 MiB. */
  readonly cacheMaxBytesPerTask?: number;
  /** One cap on overlays and caches of all tasks; above it, tasks commit early. Default 256 MiB. */
  readonly maxPendingBytes?: number;
  /** Replication factor of internal topics (changelog, repartition). Default 1. */
  readonly replicationFactor?: number;
  /** Consumer session timeout. Default 10 000 ms (a dead instance's tasks move after this). */
  readonly sessionTimeoutMs?: number;
  /** Consumer heartbeat interval. Default 1 000 ms. */
  readonly heartbeatIntervalMs?: number;
  /** Where a missing committed offset starts: 'earliest' (default) or 'latest'. */
  readonly autoOffsetReset?: 'earliest' | 'latest';
  readonly deserializationExceptionHandler?: DeserializationExceptionHandler;
  readonly processingExceptionHandler?: ProcessingExceptionHandler;
  /**
   * A record the broker would reject (too large for its topic, a null key on a compacted topic, a
   * timestamp outside the topic's bounds): 'fail' (default) stops the app, 'continue' drops it with a
   * task.record.dropped event, { deadLetterTopic } writes a description of it there. Changelog
   * records always fail.
   */
  readonly productionExceptionHandler?: ProductionExceptionHandler;
  /**
   * Called when the app would go to ERROR (a processing error under the 'fail' handler, a commit
   * failing past brokerRetryTimeoutMs, ...), as Kafka Streams' StreamsUncaughtExceptionHandler:
   * 'SHUTDOWN_CLIENT' (the default) stops this instance in ERROR; 'REPLACE_THREAD' closes every task
   * without committing and starts a new consumer (a new group member), so processing resumes from
   * the committed offsets, at most 10 times in a row without a successful commit in between.
   */
  readonly uncaughtExceptionHandler?: (error: Error) => UncaughtExceptionResponse;
  /**
   * Standby copies of each stateful task on other instances (Kafka Streams' num.standby.replicas):
   * a standby follows the task's changelogs into its own LevelDB, so a failover restores only the
   * tail. Default 0.
   */
  readonly numStandbyReplicas?: number;
  /**
   * This instance's advertised `host:port` for interactive queries (Kafka Streams'
   * application.server): carried in the group metadata, returned by allMetadata() and
   * queryMetadataForKey(). Default: none.
   */
  readonly applicationServer?: string;
  /** How long a failing broker connection is retried before the app goes to ERROR. Default 60 000 ms. */
  readonly brokerRetryTimeoutMs?: number;
  /**
   * A task with several input partitions (a join, a merge) processes records in timestamp order
   * across them and waits for a partition whose buffer is empty (Kafka Streams' max.task.idle.ms):
   * 0 (default) waits only for data the broker has, > 0 also waits this long for one that has none,
   * -1 never waits.
   */
  readonly maxTaskIdleMs?: number;
  /** Records buffered per input partition before fetching it pauses (buffered.records.per.partition). Default 1 000. */
  readonly bufferedRecordsPerPartition?: number;
  /**
   * Most bytes one fetch returns per partition (the consumer's max.partition.fetch.bytes). Fetched
   * records are decoded in memory before they are processed, so this and fetchMaxBytes bound the
   * fetch side of the app's memory. Default 256 KiB.
   */
  readonly maxPartitionFetchBytes?: number;
  /** Most bytes one fetch returns over all its partitions (fetch.max.bytes). Default 1 MiB. */
  readonly fetchMaxBytes?: number;
  /** How often records of repartition topics below the committed offsets are deleted (Kafka Streams' repartition.purge.interval.ms). Default 30 000 ms. */
  readonly repartitionPurgeIntervalMs?: number;
  /** Delay before directories of tasks no longer owned are deleted. Default 600 000 ms. */
  readonly stateCleanupDelayMs?: number;
  readonly logger?: Logger;
  /**
   * The lowest level logged, for the app's own messages and kafkajs' (whose structured fields are
   * passed as `meta`). Default 'info'. kafkajs' routine rebalance noise ("The group is rebalancing"
   * heartbeat errors) is logged at debug.
   */
  readonly logLevel?: LogLevel;
  /**
   * Stream threads of this process (Kafka Streams' num.stream.threads): each is a Node worker thread
   * with its own group member, producers and tasks, sharing the stateDir. Default 1 (no worker: the
   * app runs on the calling thread). Above 1, create the app with `KafkaStreams.fromModule(...)`:
   * every thread imports the topology itself (docs/runtime.md, "Stream threads").
   */
  readonly numStreamThreads?: number;
  /** Injected wall clock (ms). Default Date.now. */
  readonly clock?: () => number;
  /** Test hook: called between the steps of every commit; throw or kill the process to inject a fault. */
  readonly faultInjection?: (point: CommitPoint, taskId: string) => void;
}

export interface ResolvedConfig extends Required<Omit<StreamsConfig, 'kafka' | 'logger' | 'faultInjection' | 'uncaughtExceptionHandler' | 'applicationServer'>> {
  readonly applicationServer: string | undefined;
  readonly uncaughtExceptionHandler: ((error: Error) => UncaughtExceptionResponse) | undefined;
  readonly kafka: Omit<KafkaConfig, 'brokers'>;
  readonly logger: Logger;
  readonly faultInjection: ((point: CommitPoint, taskId: string) => void) | undefined;
}

const LEVELS: Readonly<Record<LogLevel, number>> = { error: 0, warn: 1, info: 2, debug: 3 };

/**
 * A console logger: one line per message, `meta` as JSON (structured fields kept), below `level`
 * dropped. The default logger of an app.
 */
export function consoleLogger(level: LogLevel = 'info'): Logger {
  const line = (lv: LogLevel, m: string, meta?: Readonly<Record<string, unknown>>): string =>
    `[vltava] ${lv.toUpperCase()} ${m}${meta !== undefined && Object.keys(meta).length > 0 ? ` ${safeJson(meta)}` : ''}`;
  const on = (lv: LogLevel): boolean => LEVELS[lv] <= LEVELS[level];
  return {
    error: (m, meta) => void (on('error') && console.error(line('error', m, meta))),
    warn: (m, meta) => void (on('warn') && console.warn(line('warn', m, meta))),
    info: (m, meta) => void (on('info') && console.info(line('info', m, meta))),
    debug: (m, meta) => void (on('debug') && console.debug(line('debug', m, meta))),
  };
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x instanceof Error ? x.message : x));
  } catch {
    return '[unserializable]';
  }
}

/** Whether `level` is logged under `threshold`. */
export function logs(threshold: LogLevel, level: LogLevel): boolean {
  return LEVELS[level] <= LEVELS[threshold];
}

function positiveInt(name: string, v: number | undefined, dflt: number, min = 1): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < min) throw new ConfigError(`${name} must be an integer >= ${min}, got ${String(v)}.`);
  return x;
}

/** More stream threads than this is a mistake: each is a worker with its own heap and connections. */
export const MAX_STREAM_THREADS = 64;

function streamThreads(v: number | undefined): number {
  const n = v ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > MAX_STREAM_THREADS) {
    throw new ConfigError(
      `numStreamThreads must be an integer from 1 to ${MAX_STREAM_THREADS} (one worker thread per core is usual: os.availableParallelism()); got ${String(v)}.`,
    );
  }
  return n;
}

/** Every key of StreamsConfig: anything else is a mistake (a typo silently ignored would run with the default). */
const KNOWN_KEYS: readonly (keyof StreamsConfig)[] = [
  'applicationId', 'brokers', 'kafka', 'processingGuarantee', 'commitIntervalMs', 'stateDir', 'transactionTimeoutMs',
  'cacheMaxBytesPerTask', 'maxPendingBytes', 'replicationFactor', 'sessionTimeoutMs', 'heartbeatIntervalMs',
  'autoOffsetReset', 'deserializationExceptionHandler', 'processingExceptionHandler', 'productionExceptionHandler', 'brokerRetryTimeoutMs',
  'repartitionPurgeIntervalMs', 'maxTaskIdleMs', 'bufferedRecordsPerPartition', 'stateCleanupDelayMs', 'logger', 'logLevel', 'clock', 'faultInjection', 'uncaughtExceptionHandler', 'applicationServer', 'numStandbyReplicas',
  'numStreamThreads', 'maxPartitionFetchBytes', 'fetchMaxBytes',
];

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}

function checkKeys(c: object): void {
  const unknown = Object.keys(c).filter((k) => !(KNOWN_KEYS as readonly string[]).includes(k));
  if (unknown.length === 0) return;
  const hints = unknown.map((k) => {
    const best = [...KNOWN_KEYS].sort((x, y) => editDistance(k.toLowerCase(), x.toLowerCase()) - editDistance(k.toLowerCase(), y.toLowerCase()))[0]!;
    return editDistance(k.toLowerCase(), best.toLowerCase()) <= Math.max(2, Math.floor(k.length / 4)) ? `"${k}" (did you mean "${best}"?)` : `"${k}"`;
  });
  throw new ConfigError(`Unknown config key${unknown.length > 1 ? 's' : ''} ${hints.join(', ')}. Known keys: ${KNOWN_KEYS.join(', ')}. kafkajs client settings go under "kafka".`);
}

export function resolveConfig(c: StreamsConfig): ResolvedConfig {
  if (c === null || typeof c !== 'object') throw new ConfigError(`The config must be an object with at least applicationId and brokers; got ${String(c)}.`);
  checkKeys(c);
  if (typeof c?.applicationId !== 'string' || !/^[A-Za-z0-9._-]+$/.test(c.applicationId)) {
    throw new ConfigError(
      `applicationId is required and may contain only letters, digits, '.', '_' and '-' (it names the consumer group, transactional ids and internal topics); got ${JSON.stringify(c?.applicationId)}.`,
    );
  }
  if (!Array.isArray(c.brokers) || c.brokers.length === 0 || c.brokers.some((b) => typeof b !== 'string' || !/^[^:\s]+:\d+$/.test(b))) {
    throw new ConfigError(`brokers must be a non-empty list of "host:port", e.g. ['127.0.0.1:9092']; got ${JSON.stringify(c.brokers)}.`);
  }
  const guarantee = c.processingGuarantee ?? 'exactly-once';
  if (guarantee !== 'exactly-once' && guarantee !== 'at-least-once') {
    throw new ConfigError(`processingGuarantee must be 'exactly-once' or 'at-least-once'; got ${JSON.stringify(guarantee)}.`);
  }
  const commitIntervalMs = positiveInt('commitIntervalMs', c.commitIntervalMs, guarantee === 'exactly-once' ? 100 : 30_000);
  const transactionTimeoutMs = positiveInt('transactionTimeoutMs', c.transactionTimeoutMs, 60_000);
  if (guarantee === 'exactly-once' && transactionTimeoutMs <= commitIntervalMs) {
    throw new ConfigError(
      `transactionTimeoutMs (${transactionTimeoutMs}) must be longer than commitIntervalMs (${commitIntervalMs}): otherwise the broker aborts every transaction before the task commits it. Raise transactionTimeoutMs or lower commitIntervalMs.`,
    );
  }
  const sessionTimeoutMs = positiveInt('sessionTimeoutMs', c.sessionTimeoutMs, 10_000);
  const heartbeatIntervalMs = positiveInt('heartbeatIntervalMs', c.heartbeatIntervalMs, 1_000);
  if (heartbeatIntervalMs >= sessionTimeoutMs) {
    throw new ConfigError(`heartbeatIntervalMs (${heartbeatIntervalMs}) must be lower than sessionTimeoutMs (${sessionTimeoutMs}); a third of it is usual.`);
  }
  const autoOffsetReset = c.autoOffsetReset ?? 'earliest';
  if (autoOffsetReset !== 'earliest' && autoOffsetReset !== 'latest') {
    throw new ConfigError(`autoOffsetReset must be 'earliest' or 'latest'; got ${JSON.stringify(autoOffsetReset)}.`);
  }
  const peh = c.processingExceptionHandler ?? 'fail';
  if (peh !== 'fail' && peh !== 'log-and-continue' && !(typeof peh === 'object' && peh !== null && typeof peh.deadLetterTopic === 'string' && peh.deadLetterTopic.length > 0)) {
    throw new ConfigError(`processingExceptionHandler must be 'fail', 'log-and-continue' or { deadLetterTopic: '<topic>' }; got ${JSON.stringify(peh)}.`);
  }
  const deh = c.deserializationExceptionHandler ?? 'fail';
  if (deh !== 'fail' && deh !== 'log-and-continue' && !(typeof deh === 'object' && deh !== null && typeof deh.deadLetterTopic === 'string' && deh.deadLetterTopic.length > 0)) {
    throw new ConfigError(`deserializationExceptionHandler must be 'fail', 'log-and-continue' or { deadLetterTopic: '<topic>' }; got ${JSON.stringify(deh)}.`);
  }
  if (c.applicationServer !== undefined && (typeof c.applicationServer !== 'string' || !/^[^:\s]+:\d+$/.test(c.applicationServer))) {
    throw new ConfigError(`applicationServer must be "host:port" (where this instance serves interactive queries); got ${JSON.stringify(c.applicationServer)}.`);
  }
  const logLevel = c.logLevel ?? 'info';
  if (!(logLevel in LEVELS)) throw new ConfigError(`logLevel must be 'error', 'warn', 'info' or 'debug'; got ${JSON.stringify(c.logLevel)}.`);
  const prodh = c.productionExceptionHandler ?? 'fail';
  if (prodh !== 'fail' && prodh !== 'continue' && !(typeof prodh === 'object' && prodh !== null && typeof prodh.deadLetterTopic === 'string' && prodh.deadLetterTopic.length > 0)) {
    throw new ConfigError(`productionExceptionHandler must be 'fail', 'continue' or { deadLetterTopic: '<topic>' }; got ${JSON.stringify(prodh)}.`);
  }
  for (const fn of ['clock', 'faultInjection', 'uncaughtExceptionHandler'] as const) {
    if (c[fn] !== undefined && typeof c[fn] !== 'function') throw new ConfigError(`${fn} must be a function; got ${typeof c[fn]}.`);
  }
  if (c.stateDir !== undefined && (typeof c.stateDir !== 'string' || c.stateDir.length === 0)) throw new ConfigError(`stateDir must be a non-empty path; got ${JSON.stringify(c.stateDir)}.`);
  return {
    applicationId: c.applicationId,
    brokers: [...c.brokers],
    kafka: c.kafka ?? {},
    processingGuarantee: guarantee,
    commitIntervalMs,
    stateDir: c.stateDir ?? './.vltava-state',
    transactionTimeoutMs,
    cacheMaxBytesPerTask: positiveInt('cacheMaxBytesPerTask', c.cacheMaxBytesPerTask, 10 * 1024 * 1024, 0),
    maxPendingBytes: positiveInt('maxPendingBytes', c.maxPendingBytes, 256 * 1024 * 1024),
    replicationFactor: positiveInt('replicationFactor', c.replicationFactor, 1),
    sessionTimeoutMs,
    heartbeatIntervalMs,
    autoOffsetReset,
    deserializationExceptionHandler: deh,
    processingExceptionHandler: peh,
    productionExceptionHandler: prodh,
    brokerRetryTimeoutMs: positiveInt('brokerRetryTimeoutMs', c.brokerRetryTimeoutMs, 60_000),
    numStandbyReplicas: positiveInt('numStandbyReplicas', c.numStandbyReplicas, 0, 0),
    numStreamThreads: streamThreads(c.numStreamThreads),
    maxTaskIdleMs: positiveInt('maxTaskIdleMs', c.maxTaskIdleMs, 0, -1),
    bufferedRecordsPerPartition: positiveInt('bufferedRecordsPerPartition', c.bufferedRecordsPerPartition, 1_000),
    maxPartitionFetchBytes: positiveInt('maxPartitionFetchBytes', c.maxPartitionFetchBytes, 256 * 1024, 1024),
    fetchMaxBytes: positiveInt('fetchMaxBytes', c.fetchMaxBytes, 1024 * 1024, 1024),
    repartitionPurgeIntervalMs: positiveInt('repartitionPurgeIntervalMs', c.repartitionPurgeIntervalMs, 30_000),
    stateCleanupDelayMs: positiveInt('stateCleanupDelayMs', c.stateCleanupDelayMs, 600_000, 0),
    logLevel,
    logger: c.logger ?? consoleLogger(logLevel),
    clock: c.clock ?? Date.now,
    faultInjection: c.faultInjection,
    uncaughtExceptionHandler: c.uncaughtExceptionHandler,
    applicationServer: c.applicationServer,
  };
}
