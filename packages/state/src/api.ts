/**
 * The contract between `@vltava/state` and the task executor (runtime task layer, test driver).
 *
 * Life of a task's stores:
 *   const stores = await openTaskStores({...});        // opens bytes stores, reads checkpoints
 *   await stores.restore(reader, listener);             // replays checkpoint+1 .. end of changelog
 *   ... per record (synchronous): stores.getStore(name).put/get/...
 *       (writes go to the overlay; change-logging sends records to the collector; caching collapses)
 *   stores.flush();                                     // before a commit: cache -> changelog records
 *                                                       //   and cache flush listeners (downstream)
 *   ... runtime commits the Kafka transaction, learns the changelog offsets ...
 *   await stores.commit(changelogOffsets);              // overlay + offsets in ONE atomic batch
 *   or stores.abort();                                  // drop overlay and cache, LevelDB untouched
 *   await stores.close();
 */
import type { RecordCollector, StateStore, StoreSpec } from '@vltava/dsl';

export type StateBackend = 'memory' | 'leveldb';

/** A record read back from a changelog topic (read_committed). */
export interface ChangelogRecord {
  readonly offset: number;
  readonly key: Buffer;
  readonly value: Buffer | null;
  readonly timestamp: number;
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
  /** Record cache size in bytes for this task (0 disables caching). */
  readonly cacheMaxBytes?: number;
}

export interface TaskStores {
  readonly taskId: string;
  getStore<S extends StateStore = StateStore>(name: string): S;
  /** Changelog topic of a store: `<appId>-<store>-changelog`. */
  changelogTopic(store: string): string;
  /** The last checkpointed changelog offset per store (undefined: never checkpointed). */
  checkpoint(store: string): number | undefined;
  restore(reader: ChangelogReader, listener?: RestoreListener): Promise<void>;
  /** Flushes record caches: emits the collapsed changelog records and cache flush events. */
  flush(): void;
  /** Bytes held in overlays and caches, for the global memory cap. */
  pendingBytes(): number;
  /** After the Kafka commit: writes overlays and the changelog offsets (per store) atomically. */
  commit(changelogOffsets: ReadonlyMap<string, number>): Promise<void>;
  /** Drops uncommitted writes. */
  abort(): void;
  close(): Promise<void>;
}
