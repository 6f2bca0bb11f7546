/**
 * DatabaseSink: a Kafka topic (a topology's output, a KTable's changelog) into a database table,
 * exactly once. Two modes (docs/sinks.md):
 *
 * - `transactional`: the sink reads read_committed and, for each batch of one partition, writes the
 *   rows AND advances that partition's row in the offsets table in ONE database transaction. Kafka's
 *   consumer group is used only to spread partitions over sink instances: nothing is ever committed
 *   to Kafka. On every assignment each partition is sought to the offset stored in the database. The
 *   offset row is advanced by check-and-advance (`UPDATE ... WHERE next_offset = <expected>`), done
 *   first in the transaction: if another instance (a rebalance, a zombie, an earlier life of this
 *   process) advanced it, 0 rows change and the whole batch rolls back ("fencing by offset").
 *   Any write works, even a non-idempotent one (plain INSERT, `balance = balance + x`).
 * - `idempotent`: the rows are upserted keyed by a deterministic id, each with a version (the record's
 *   offset by default) that must grow for a row to change; offsets are committed to Kafka after the
 *   database commit, so a crash replays a tail, and replaying it changes nothing. Exactly-once holds
 *   when the row is a pure function of the record and a later version always wins.
 */
import { requireKafkajsFixes } from '@vltava/runtime/kafkajs-fixes';
import { Kafka, logLevel, type Consumer, type ConsumerConfig, type EachBatchPayload, type KafkaConfig, type KafkaMessage } from 'kafkajs';
import type { Row, SinkAdapter, SqlValue } from './adapter.js';
import { DEFAULT_OFFSETS_TABLE, advanceOffset, deleteRows, insertRows, offsetsTableDdl, readOffsets, upsertRows, type WriteSpec } from './sql.js';

/** A record as the sink hands it to `toRow` and id functions. */
export interface SinkRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, Buffer | undefined>>;
}

/**
 * Where a record's deterministic id comes from: its key (UTF-8), one of its headers, or a function
 * of the record. The id goes into `idColumn`.
 */
export type IdSource = 'key' | { readonly header: string } | ((record: SinkRecord) => string | null);

export type SinkMode = 'transactional' | 'idempotent';

/**
 * The steps of one batch's commit, for fault injection (`hooks.step`): `before-begin` (nothing of
 * this batch is in the database), `after-rows` (rows and offset written inside the open database
 * transaction, before COMMIT), `after-commit` (committed in the database), and in idempotent mode
 * `after-kafka-commit` (offsets committed to the consumer group).
 */
export type SinkStep = 'before-begin' | 'after-rows' | 'after-commit' | 'after-kafka-commit';

export interface SinkStepInfo {
  readonly topic: string;
  readonly partition: number;
  /** Offset of the first record of the batch and the next offset after it. */
  readonly firstOffset: number;
  readonly nextOffset: number;
  readonly rows: number;
  /** 1 for the sink's first batch, then 2, 3, ... (across partitions). */
  readonly batch: number;
}

export type SinkEvent =
  | { readonly type: 'assigned'; readonly partitions: readonly { topic: string; partition: number; offset: number; stored: boolean }[] }
  | { readonly type: 'committed'; readonly topic: string; readonly partition: number; readonly nextOffset: number; readonly records: number; readonly rows: number }
  | { readonly type: 'fenced'; readonly topic: string; readonly partition: number; readonly expected: number | undefined; readonly stored: number | undefined }
  | { readonly type: 'db-error'; readonly error: Error; readonly attempt: number }
  | { readonly type: 'error'; readonly error: Error };

export interface DatabaseSinkConfig {
  /** Names the sink: the consumer group (for partition assignment) and its rows in the offsets table. */
  readonly sinkId: string;
  readonly brokers: readonly string[];
  /** The topic(s) to write (Kafka Connect's `topics`). */
  readonly topics: string | readonly string[];
  readonly mode: SinkMode;
  readonly adapter: SinkAdapter;
  /** The target table (it must exist; `adapter.run(ddl)` creates it). */
  readonly table: string;
  /**
   * The row for a record; `null` or `undefined` writes nothing for it. The id (`id`) and version
   * (`versionColumn`) columns are added by the sink.
   */
  readonly toRow: (record: SinkRecord) => Row | null | undefined;
  /** `insert` (append; transactional mode only) or `upsert` (Kafka Connect's `insert.mode`). Default: insert in transactional mode, upsert in idempotent mode. */
  readonly insertMode?: 'insert' | 'upsert';
  /** The primary-key columns for upserts and deletes (Connect's `pk.fields`). Default: `[idColumn]` when `id` is set. */
  readonly keyColumns?: readonly string[];
  /** The deterministic id, written to `idColumn` (Connect's `pk.mode` record_key / header / function). */
  readonly id?: IdSource;
  /** Default 'id'. */
  readonly idColumn?: string;
  /**
   * Idempotent mode: the column holding each row's version (default 'kafka_offset'); a row is only
   * replaced by a greater version. `null` turns versioning off (then replays may move a row back
   * to an older value until the replay catches up).
   */
  readonly versionColumn?: string | null;
  /** The version of a record's row (default: its offset; then rows of one id must stay in one partition). */
  readonly version?: (record: SinkRecord) => number | bigint;
  /** A record with a null value deletes the row of its id (Connect's `delete.enabled`). Default false. */
  readonly deleteOnTombstone?: boolean;
  /** Default 'vltava_sink_offsets'; created if missing (transactional mode). */
  readonly offsetsTable?: string;
  /** Records per database transaction at most (Connect's `batch.size`; default 500). */
  readonly maxBatchRecords?: number;
  /** How long to retry a failing database before the sink fails (default 60 s). */
  readonly dbRetryTimeoutMs?: number;
  readonly kafka?: Partial<KafkaConfig>;
  readonly consumer?: Partial<ConsumerConfig>;
  readonly onEvent?: (event: SinkEvent) => void;
  /** Fault injection for tests and chaos runs: called at each step of every batch. */
  readonly hooks?: { readonly step?: (step: SinkStep, info: SinkStepInfo) => void | Promise<void> };
}

/** Thrown inside a transaction whose check-and-advance found the offset moved: rolls it back. */
class FencedByOffset extends Error {
  constructor(readonly stored: number | undefined) {
    super('sink: the stored offset moved (another instance applied this batch)');
  }
}

export class SinkConfigError extends Error {
  override name = 'SinkConfigError';
}

interface Position {
  /** Next offset to apply; undefined until known. */
  next: number;
  /** Whether the database has a row for it (else the check-and-advance inserts one). */
  stored: boolean;
}

const tp = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

function isKafkaJsError(e: unknown): boolean {
  return e instanceof Error && e.name.startsWith('KafkaJS');
}

export class DatabaseSink {
  readonly config: DatabaseSinkConfig;
  private readonly topics: readonly string[];
  private readonly spec: WriteSpec;
  private readonly insertMode: 'insert' | 'upsert';
  private readonly idColumn: string;
  private readonly versionColumn: string | undefined;
  private readonly offsetsTable: string;
  private readonly maxBatch: number;
  private consumer: Consumer | undefined;
  private readonly kafka: Kafka;
  /** Transactional mode: where each assigned partition continues (a promise while it loads). */
  private readonly positions = new Map<string, Promise<Position>>();
  private batches = 0;
  private stopping = false;
  private failed: Error | undefined;
  private readonly failWaiters: ((e: Error) => void)[] = [];
  /** One database connection: every use of it goes through this chain, one at a time. */
  private dbChain: Promise<unknown> = Promise.resolve();
  /** Counters since start. */
  readonly stats = { records: 0, rows: 0, transactions: 0, fenced: 0, dbErrors: 0, skipped: 0 };

  constructor(config: DatabaseSinkConfig) {
    this.config = config;
    this.topics = typeof config.topics === 'string' ? [config.topics] : [...config.topics];
    if (this.topics.length === 0) throw new SinkConfigError('DatabaseSink: no topics');
    if (config.mode !== 'transactional' && config.mode !== 'idempotent') throw new SinkConfigError(`DatabaseSink: mode must be 'transactional' or 'idempotent', not ${String(config.mode)}`);
    this.insertMode = config.insertMode ?? (config.mode === 'transactional' ? 'insert' : 'upsert');
    if (config.mode === 'idempotent' && this.insertMode !== 'upsert') {
      throw new SinkConfigError("DatabaseSink: idempotent mode needs insertMode 'upsert' (a plain INSERT replayed after a crash is a duplicate); use mode 'transactional' to append");
    }
    this.idColumn = config.idColumn ?? 'id';
    const keyColumns = config.keyColumns ?? (config.id !== undefined ? [this.idColumn] : []);
    if ((this.insertMode === 'upsert' || config.deleteOnTombstone) && keyColumns.length === 0) {
      throw new SinkConfigError('DatabaseSink: upserts and deletes need keyColumns (or an id source)');
    }
    if (config.deleteOnTombstone && config.id === undefined) throw new SinkConfigError('DatabaseSink: deleteOnTombstone needs an id source (a tombstone has no value to take a key from)');
    this.versionColumn = config.mode === 'idempotent' && config.versionColumn !== null ? (config.versionColumn ?? 'kafka_offset') : undefined;
    this.spec = { table: config.table, keyColumns, versionColumn: this.versionColumn };
    this.offsetsTable = config.offsetsTable ?? DEFAULT_OFFSETS_TABLE;
    this.maxBatch = Math.max(1, config.maxBatchRecords ?? 500);
    this.kafka = new Kafka({ clientId: `vltava-sink-${config.sinkId}`, logLevel: logLevel.NOTHING, ...config.kafka, brokers: [...config.brokers] });
  }

  /** Connects, prepares the offsets table, joins the group and starts writing. */
  async start(): Promise<void> {
    await requireKafkajsFixes('exactly-once');
    const { adapter } = this.config;
    await this.withDbRetry(() => adapter.connect(), () => true);
    // Retried: two instances starting together race on CREATE TABLE IF NOT EXISTS in PostgreSQL.
    if (this.config.mode === 'transactional') await this.withDbRetry(() => this.serial(() => adapter.run(offsetsTableDdl(this.offsetsTable))), () => true);
    const consumer = this.kafka.consumer({
      groupId: this.config.sinkId,
      readUncommitted: false,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      ...this.config.consumer,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      if (this.config.mode !== 'transactional') return;
      const assignment = e.payload.memberAssignment as Record<string, number[]>;
      this.positions.clear();
      const loads: Promise<{ topic: string; partition: number; offset: number; stored: boolean }>[] = [];
      for (const [topic, parts] of Object.entries(assignment)) {
        for (const partition of parts) {
          const p = this.withDbRetry(() => this.loadPosition(topic, partition, true), () => !this.stopping).then((pos) => pos ?? { next: 0, stored: false });
          this.positions.set(tp(topic, partition), p);
          loads.push(p.then((pos) => ({ topic, partition, offset: pos.next, stored: pos.stored })));
        }
      }
      Promise.all(loads).then(
        (partitions) => this.emit({ type: 'assigned', partitions }),
        (err: unknown) => this.fail(err),
      );
    });
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) this.fail(e.payload.error);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [...this.topics], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: async (payload) => {
        try {
          if (this.config.mode === 'transactional') await this.transactionalBatch(payload);
          else await this.idempotentBatch(payload);
        } catch (e) {
          // Kafka's own errors (a rebalance in progress, a coordinator moving) are kafkajs' to handle:
          // it rejoins, and every assignment seeks to the database's offsets again. Anything else
          // (the database down past dbRetryTimeoutMs, a toRow that throws) fails the sink.
          if (!isKafkaJsError(e)) this.fail(e);
          throw e;
        }
      },
    });
  }

  /** Resolves never; rejects when the sink fails (a database down past `dbRetryTimeoutMs`, ...). */
  failure(): Promise<never> {
    return new Promise((_, reject) => {
      if (this.failed !== undefined) reject(this.failed);
      else this.failWaiters.push(reject);
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.consumer?.disconnect().catch(() => undefined);
    await this.config.adapter.close();
  }

  /** The offsets stored in the database for `topic` (transactional mode): partition -> next offset. */
  storedOffsets(topic: string): Promise<Map<number, number>> {
    // Serialised with the sink's own transactions: on its connection an open one would show its uncommitted offsets.
    return this.serial(() => readOffsets(this.config.adapter, this.config.adapter.dialect, this.offsetsTable, this.config.sinkId, topic));
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.dbChain.then(fn, fn);
    this.dbChain = run.catch(() => undefined);
    return run;
  }

  private emit(e: SinkEvent): void {
    this.config.onEvent?.(e);
  }

  private fail(err: unknown): void {
    if (this.stopping) return;
    const e = err instanceof Error ? err : new Error(String(err));
    if (this.failed !== undefined) return;
    this.failed = e;
    this.emit({ type: 'error', error: e });
    for (const w of this.failWaiters.splice(0)) w(e);
    // Stop consuming (not awaited: this may run inside eachBatch, which disconnect waits for).
    setImmediate(() => void this.consumer?.disconnect().catch(() => undefined));
  }

  /** The database's offset for a partition (or the log start), and seeks the consumer there. */
  private async loadPosition(topic: string, partition: number, seek: boolean): Promise<Position> {
    const stored = (await this.storedOffsets(topic)).get(partition);
    const admin = this.kafka.admin();
    await admin.connect();
    let low: number;
    try {
      low = Number((await admin.fetchTopicOffsets(topic)).find((o) => o.partition === partition)?.low ?? 0);
    } finally {
      await admin.disconnect();
    }
    if (stored !== undefined && stored < low) {
      // Records the sink never applied were deleted (retention, deleteRecords): not exactly-once any more.
      throw new SinkConfigError(`sink ${this.config.sinkId}: ${topic}/${partition} records ${stored}..${low - 1} were deleted before the sink applied them (stored offset ${stored}, log start ${low}); fix the table, then move the offset row in ${this.offsetsTable} to ${low} to go on`);
    }
    const pos: Position = stored !== undefined ? { next: stored, stored: true } : { next: low, stored: false };
    if (seek) this.consumer?.seek({ topic, partition, offset: String(pos.next) });
    return pos;
  }

  private position(topic: string, partition: number): Promise<Position> {
    let p = this.positions.get(tp(topic, partition));
    if (p === undefined) {
      p = this.loadPosition(topic, partition, false);
      this.positions.set(tp(topic, partition), p);
    }
    return p;
  }

  private toRecord(topic: string, partition: number, m: KafkaMessage): SinkRecord {
    const headers: Record<string, Buffer | undefined> = {};
    for (const [k, v] of Object.entries(m.headers ?? {})) headers[k] = Array.isArray(v) ? (v.at(-1) === undefined ? undefined : Buffer.from(v.at(-1)!)) : v === undefined ? undefined : Buffer.from(v);
    return { topic, partition, offset: Number(m.offset), timestamp: Number(m.timestamp), key: m.key, value: m.value, headers };
  }

  private idOf(r: SinkRecord): string | null {
    const src = this.config.id;
    if (src === undefined) return null;
    if (src === 'key') return r.key === null ? null : r.key.toString('utf8');
    if (typeof src === 'function') return src(r);
    return r.headers[src.header]?.toString('utf8') ?? null;
  }

  /** Turns records into the rows to upsert/insert and the keys to delete (last one per key wins). */
  private plan(records: readonly SinkRecord[]): { rows: Row[]; deletes: Row[] } {
    const withId = (r: SinkRecord, row: Row): Row => {
      const out: Record<string, SqlValue> = { ...row };
      if (this.config.id !== undefined) {
        const id = this.idOf(r);
        if (id === null) throw new Error(`sink: record ${r.topic}/${r.partition}@${r.offset} has no id (${typeof this.config.id === 'string' ? this.config.id : 'header or function'})`);
        out[this.idColumn] = id;
      }
      if (this.versionColumn !== undefined) out[this.versionColumn] = this.config.version === undefined ? r.offset : this.config.version(r);
      return out;
    };
    if (this.insertMode === 'insert') {
      const rows: Row[] = [];
      for (const r of records) {
        const row = this.config.toRow(r);
        if (row !== null && row !== undefined) rows.push(withId(r, row));
      }
      return { rows, deletes: [] };
    }
    // Upsert: one operation per key, the last (or, versioned, the highest version) wins.
    const ops = new Map<string, { row: Row; del: boolean }>();
    const keyOf = (row: Row): string => JSON.stringify(this.spec.keyColumns.map((c) => { const v = row[c]; return typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v; }));
    for (const r of records) {
      let op: { row: Row; del: boolean } | undefined;
      if (r.value === null && this.config.deleteOnTombstone) op = { row: withId(r, {}), del: true };
      else {
        const row = this.config.toRow(r);
        if (row !== null && row !== undefined) op = { row: withId(r, row), del: false };
      }
      if (op === undefined) continue;
      const k = keyOf(op.row);
      const prev = ops.get(k);
      if (prev !== undefined && this.versionColumn !== undefined && !op.del && !prev.del && (prev.row[this.versionColumn] as number | bigint) > (op.row[this.versionColumn] as number | bigint)) continue;
      ops.delete(k);
      ops.set(k, op);
    }
    const rows: Row[] = [];
    const deletes: Row[] = [];
    for (const op of ops.values()) (op.del ? deletes : rows).push(op.row);
    return { rows, deletes };
  }

  private async write(tx: import('./adapter.js').SqlExecutor, records: readonly SinkRecord[]): Promise<number> {
    const { rows, deletes } = this.plan(records);
    const d = this.config.adapter.dialect;
    let n = 0;
    if (deletes.length > 0) n += await deleteRows(tx, d, this.spec, deletes);
    if (this.insertMode === 'insert') n += await insertRows(tx, d, this.config.table, rows);
    else n += await upsertRows(tx, d, this.spec, rows);
    return n;
  }

  private async step(step: SinkStep, info: SinkStepInfo): Promise<void> {
    await this.config.hooks?.step?.(step, info);
  }

  /** Retries `attempt` on database errors, reconnecting between tries, until dbRetryTimeoutMs. */
  private async withDbRetry<T>(attempt: () => Promise<T>, isRunning: () => boolean): Promise<T | undefined> {
    const deadline = Date.now() + (this.config.dbRetryTimeoutMs ?? 60_000);
    for (let i = 1; ; i++) {
      try {
        return await attempt();
      } catch (e) {
        if (e instanceof FencedByOffset || e instanceof SinkConfigError) throw e;
        const err = e instanceof Error ? e : new Error(String(e));
        this.stats.dbErrors++;
        this.emit({ type: 'db-error', error: err, attempt: i });
        if (Date.now() > deadline || this.stopping) throw err;
        await new Promise((r) => setTimeout(r, Math.min(2_000, 50 * 2 ** Math.min(i, 6))));
        if (!isRunning()) return undefined;
        await this.serial(() => this.config.adapter.reconnect()).catch(() => undefined);
      }
    }
  }

  private async transactionalBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    const { adapter } = this.config;
    const key = tp(topic, partition);
    let pos = await this.position(topic, partition);
    const all = batch.messages.map((m) => this.toRecord(topic, partition, m));
    let i = 0;
    while (i < all.length) {
      if (!isRunning() || isStale() || this.stopping) return;
      // Records below the stored offset were applied already (a refetch before our seek took effect).
      while (i < all.length && all[i]!.offset < pos.next) {
        this.stats.skipped++;
        i++;
      }
      if (i >= all.length) break;
      const chunk = all.slice(i, i + this.maxBatch);
      const first = chunk[0]!.offset;
      const next = chunk.at(-1)!.offset + 1;
      const info: SinkStepInfo = { topic, partition, firstOffset: first, nextOffset: next, rows: chunk.length, batch: ++this.batches };
      const expected = pos.stored ? pos.next : undefined;
      try {
        const rows = await this.withDbRetry(async () => {
          await this.step('before-begin', info);
          const n = await this.serial(() => adapter.transaction(
            async (tx) => {
              // Fencing first: takes the offset row's lock, and aborts before any row is written.
              if (!(await advanceOffset(tx, adapter.dialect, this.offsetsTable, this.config.sinkId, topic, partition, expected, next))) {
                throw new FencedByOffset((await readOffsets(tx, adapter.dialect, this.offsetsTable, this.config.sinkId, topic)).get(partition));
              }
              return this.write(tx, chunk);
            },
            () => this.step('after-rows', info),
          ));
          return n;
        }, isRunning);
        if (rows === undefined) return;
        pos = { next, stored: true };
        this.positions.set(key, Promise.resolve(pos));
        this.stats.records += chunk.length;
        this.stats.rows += rows;
        this.stats.transactions++;
        this.emit({ type: 'committed', topic, partition, nextOffset: next, records: chunk.length, rows });
        await this.step('after-commit', info);
        resolveOffset(String(next - 1));
        i += chunk.length;
        await heartbeat();
      } catch (e) {
        if (!(e instanceof FencedByOffset)) {
          // A database error past the retry deadline, or an error thrown by toRow/hooks.
          throw e;
        }
        // Someone else applied this range (or an ambiguous COMMIT of ours did): take the database's
        // word for where this partition stands, and continue from there.
        this.stats.fenced++;
        this.emit({ type: 'fenced', topic, partition, expected, stored: e.stored });
        const reloaded = await this.withDbRetry(() => this.loadPosition(topic, partition, true), isRunning);
        if (reloaded === undefined) return;
        pos = reloaded;
        this.positions.set(key, Promise.resolve(pos));
      }
    }
    if (all.length > 0) resolveOffset(batch.lastOffset());
  }

  private async idempotentBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    const { adapter } = this.config;
    const all = batch.messages.map((m) => this.toRecord(topic, partition, m));
    for (let i = 0; i < all.length; i += this.maxBatch) {
      if (!isRunning() || isStale() || this.stopping) return;
      const chunk = all.slice(i, i + this.maxBatch);
      const next = chunk.at(-1)!.offset + 1;
      const info: SinkStepInfo = { topic, partition, firstOffset: chunk[0]!.offset, nextOffset: next, rows: chunk.length, batch: ++this.batches };
      const rows = await this.withDbRetry(async () => {
        await this.step('before-begin', info);
        return this.serial(() => adapter.transaction((tx) => this.write(tx, chunk), () => this.step('after-rows', info)));
      }, isRunning);
      if (rows === undefined) return;
      this.stats.records += chunk.length;
      this.stats.rows += rows;
      this.stats.transactions++;
      this.emit({ type: 'committed', topic, partition, nextOffset: next, records: chunk.length, rows });
      await this.step('after-commit', info);
      resolveOffset(String(next - 1));
      // At-least-once towards Kafka: a crash before this commit replays the chunk, which changes nothing.
      await this.consumer!.commitOffsets([{ topic, partition, offset: String(next) }]);
      await this.step('after-kafka-commit', info);
      await heartbeat();
    }
  }
}
