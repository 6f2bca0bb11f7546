/**
 * The contract between `@vltava/state` and the task executor (runtime task layer, test driver).
 *
 * Life of a task's stores:
 *   const stores = await openTaskStores({...});        // opens bytes stores, reads checkpoints
 *   await stores.restore(reader, listener);             // replays checkpoint+1 .. end of changelog
 *                                                       //   (and catches the key index up, if needed)
 *   ... per record (synchronous): stores.getStore(name).put/get/...
 *       (writes go to the overlay; change-logging sends records to the collector; caching collapses)
 *   stores.flush();                                     // before a commit: cache -> changelog records
 *                                                       //   and cache flush listeners (downstream)
 *   ... runtime commits the Kafka transaction, learns the changelog offsets ...
 *   await stores.commit(changelogOffsets);              // overlay + offsets in ONE atomic batch
 *   or stores.abort();                                  // drop overlay and cache, LevelDB untouched
 *   await stores.close();
 *
 * The memory backend can also be opened synchronously (`openTaskStoresSync`) and committed
 * synchronously (`commitSync`), for the test driver.
 */
import type { RecordCollector, StateStore, StoreSpec } from '@vltava/dsl';

export type StateBackend = 'memory' | 'leveldb';

/** A record read back from a changelog topic (read_committed). */
export interface ChangelogRecord {
  readonly offset: number;
  readonly key: Buffer;
  readonly value: Buffer | null;
  readonly timestamp: number;
  /**
   * The record's headers, if the reader exposes them (undefined: it does not, and the store shape
   * header cannot be checked). Vltava writes `vltava.store.shape` on every changelog record.
   */
  readonly headers?: Readonly<Record<string, unknown>>;
}

/**
 * The port through which stores are restored. The runtime implements it on kafkajs;
 * tests implement it in memory.
 */
export interface ChangelogReader {
  /** The offset after the last record (the log end offset, read_committed: the LSO). */
  endOffset(topic: string, partition: number): Promise<number>;
  /** The first offset still in the log. */
  beginningOffset(topic: string, partition: number): Promise<number>;
  /**
   * Reads [fromOffset, toOffset) in batches. Throws ChangelogTruncatedError if fromOffset is below
   * the beginning of the log.
   */
  read(
    topic: string,
    partition: number,
    fromOffset: number,
    toOffset: number,
    onBatch: (records: readonly ChangelogRecord[]) => Promise<void> | void,
  ): Promise<void>;
}

export interface RestoreProgress {
  readonly taskId: string;
  readonly store: string;
  readonly restored: number;
  readonly total: number;
}

export interface RestoreListener {
  onRestoreStart?(p: RestoreProgress): void;
  onBatchRestored?(p: RestoreProgress): void;
  onRestoreEnd?(p: RestoreProgress): void;
}

export interface OpenTaskStoresOptions {
  readonly applicationId: string;
  /** `<subtopology>_<partition>` */
  readonly taskId: string;
  /** The task's partition: changelog records go to this partition of each changelog topic. */
  readonly partition: number;
  readonly specs: readonly StoreSpec[];
  readonly collector: RecordCollector;
  readonly backend: StateBackend;
  /** Required for 'leveldb': the root state directory; the task's dir is <stateDir>/<appId>/<taskId>. */
  readonly stateDir?: string;
  /** Record cache size in bytes for this task, split evenly over its caching stores (0 disables caching). Default 10 MiB. */
  readonly cacheMaxBytes?: number;
  /** The timestamp of the record being processed, stamped on changelog records (default Date.now). */
  readonly recordTimestamp?: () => number;
  /** leveldb: fsync each commit batch (survives power loss, not only a process crash). Default false. */
  readonly syncWrites?: boolean;
  /**
   * leveldb: minimum time between key index snapshots of a range-capable store, written after a
   * commit (and always at close). After a crash, open + restore reconcile only the keys changed since
   * the last snapshot. Default 60 000 ms.
   */
  readonly indexSnapshotIntervalMs?: number;
  /** Injected clock (ms) for the snapshot interval. Default Date.now. */
  readonly clock?: () => number;
}

export interface TaskStores {
  readonly taskId: string;
  getStore<S extends StateStore = StateStore>(name: string): S;
  /** Changelog topic of a store: `<appId>-<store>-changelog`. */
  changelogTopic(store: string): string;
  /** A read-only view of the store's committed state (interactive queries). */
  committedView<S extends StateStore = StateStore>(name: string): S;
  /** The last checkpointed changelog offset per store (undefined: never checkpointed). */
  checkpoint(store: string): number | undefined;
  /**
   * Replays each change-logged store from its checkpoint + 1 to the end of its changelog (read_committed).
   * No checkpoint (new, missing or corrupt database): from the beginning. Checkpoint below the log start
   * (truncated changelog) or past the log end: the store is wiped and fully restored. Call before processing.
   */
  restore(reader: ChangelogReader, listener?: RestoreListener): Promise<void>;
  /** True if the local database was missing, corrupt or wiped at open: `restore` replays everything. */
  readonly openedEmpty: boolean;
  /** Flushes record caches: emits the collapsed changelog records and cache flush events. */
  flush(): void;
  /** Bytes held in overlays and caches, for the global memory cap. */
  pendingBytes(): number;
  /**
   * After the Kafka commit: writes overlays and the changelog offsets (per store name: the offset of the
   * store's last changelog record in the committed transaction) in ONE atomic batch. Stores without an
   * entry keep their checkpoint. Throws if a cache is unflushed or an offset is below the checkpoint.
   */
  commit(changelogOffsets: ReadonlyMap<string, number>): Promise<void>;
  /** The same, synchronously; memory backend only (throws for leveldb). */
  commitSync(changelogOffsets: ReadonlyMap<string, number>): void;
  /** Drops uncommitted writes (caches and overlays); the database is untouched. Throws during an in-flight commit. */
  abort(): void;
  /**
   * Waits for an in-flight commit, drops uncommitted writes, writes key index snapshots (leveldb),
   * closes the database and releases the directory lock.
   */
  close(): Promise<void>;
}
