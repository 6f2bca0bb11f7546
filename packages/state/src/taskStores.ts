import type { BytesLayer } from './bytesLayer.js';
import type { StateStore, StoreSpec } from '@vltava/dsl';
import { StateStoreError } from '@vltava/dsl';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { deleteIndexSnapshot, snapshotPath, writeIndexSnapshot } from './indexSnapshot.js';
import type { ChangelogReader, OpenTaskStoresOptions, RestoreListener, RestoreProgress, TaskStores } from './api.js';
import { ChangelogTruncatedError } from './changelogTruncatedError.js';
import { TypedKeyValueStore } from './keyValueStore.js';
import { LevelTaskDb } from './levelTaskDb.js';
import { MemoryTaskDb } from './memoryTaskDb.js';
import { TypedSessionStore } from './sessionStore.js';
import { lockTaskDir, taskDirectory, type TaskDirLock } from './stateDirectory.js';
import { checkpointKey, shapeKey, StoreStack, streamTimeKey } from './storeStack.js';
import { checkRecordShape, formatOfLayout, localShapeMismatch, localShapeUnknown } from './storeShape.js';
import { META, type DbOp, type TaskDb } from './taskDb.js';
import { TypedWindowStore } from './windowStore.js';

export const DEFAULT_CACHE_MAX_BYTES = 10 * 1024 * 1024;
const FORMAT_KEY = 'format';
const FORMAT = 'vltava-state-1';
/** A random id of this database incarnation: key index snapshots of another incarnation are ignored. */
const DB_ID_KEY = 'dbid';
export const DEFAULT_INDEX_SNAPSHOT_INTERVAL_MS = 60_000;
/** Restores longer than this (in offsets) update the key index once at the end. */
const BULK_RESTORE_THRESHOLD = 20_000;

/**
 * Opens the stores of one task. leveldb: locks `<stateDir>/<appId>/<taskId>`, opens (or recreates, if
 * corrupt) its database, reads the checkpoints and loads the key indexes. memory: an empty store set.
 */
export async function openTaskStores(options: OpenTaskStoresOptions): Promise<TaskStores> {
  validate(options);
  // a stateless task has nothing to keep: no directory, no lock, no database
  if (options.backend === 'memory' || options.specs.length === 0) return openTaskStoresSync({ ...options, backend: 'memory' });
  if (options.stateDir === undefined) {
    throw new StateStoreError(`openTaskStores: backend 'leveldb' needs a stateDir (the root state directory)`, { taskId: options.taskId });
  }
  const dir = taskDirectory(options.stateDir, options.applicationId, options.taskId);
  const lock = await lockTaskDir(dir);
  let db: LevelTaskDb | undefined;
  try {
    const opened = await LevelTaskDb.open(join(dir, 'db'), {
      syncWrites: options.syncWrites ?? false,
      // Committed values read or written stay cached, within the same budget as the record cache.
      readCacheBytes: options.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES,
    });
    db = opened.db;
    let empty = opened.wiped;
    const format = db.get(META, FORMAT_KEY)?.toString('latin1');
    if (format === undefined) {
      empty = true;
      await db.write([
        { prefix: META, key: FORMAT_KEY, value: Buffer.from(FORMAT, 'latin1') },
        { prefix: META, key: DB_ID_KEY, value: Buffer.from(randomBytes(8).toString('hex'), 'latin1') },
      ]);
    } else if (format !== FORMAT) {
      throw new StateStoreError(
        `state directory ${dir} holds state format "${format}", this version reads "${FORMAT}": delete the directory to restore it from the changelog`,
        { taskId: options.taskId },
      );
    }
    const dbId = db.get(META, DB_ID_KEY)?.toString('latin1') ?? 'none';
    const stores = new DefaultTaskStores(options, db, lock, empty, { dir: join(dir, 'index'), dbId });
    await stores.checkShapes(dir);
    await stores.loadIndexes();
    return stores;
  } catch (err) {
    await db?.close().catch(() => undefined);
    await lock.release();
    throw err;
  }
}

/** Opens the stores of one task on the memory backend, synchronously (for the test driver). */
export function openTaskStoresSync(options: OpenTaskStoresOptions): TaskStores {
  validate(options);
  if (options.backend !== 'memory') {
    throw new StateStoreError(`openTaskStoresSync supports only backend 'memory'; use await openTaskStores() for '${options.backend}'`, {
      taskId: options.taskId,
    });
  }
  return new DefaultTaskStores(options, new MemoryTaskDb(), undefined, true);
}

function validate(options: OpenTaskStoresOptions): void {
  const seen = new Set<string>();
  for (const spec of options.specs) {
    if (spec.name.length === 0 || spec.name.includes('\x00')) {
      throw new StateStoreError(`invalid store name ${JSON.stringify(spec.name)}: use a non-empty name without NUL characters`, { taskId: options.taskId });
    }
    if (seen.has(spec.name)) throw new StateStoreError(`store "${spec.name}" is declared twice in task ${options.taskId}`, { taskId: options.taskId });
    seen.add(spec.name);
    if (spec.kind !== 'keyValue' && spec.kind !== 'window' && spec.kind !== 'session') {
      throw new StateStoreError(`store "${spec.name}" has unknown kind "${String(spec.kind)}"`, { taskId: options.taskId });
    }
  }
}

class DefaultTaskStores implements TaskStores {
  readonly taskId: string;
  private readonly stacks = new Map<string, StoreStack>();
  private readonly facades = new Map<string, StateStore>();
  private closed = false;
  /** The LevelDB write of a commit in flight (undefined: none). */
  private committing: Promise<void> | undefined;
  private readonly snapshotWrites = new Set<Promise<void>>();
  private readonly snapshotIntervalMs: number;
  private readonly clock: () => number;

  constructor(
    private readonly options: OpenTaskStoresOptions,
    private readonly db: TaskDb,
    private readonly lock: TaskDirLock | undefined,
    readonly openedEmpty: boolean,
    private readonly snapshots?: { readonly dir: string; readonly dbId: string },
  ) {
    this.taskId = options.taskId;
    this.snapshotIntervalMs = options.indexSnapshotIntervalMs ?? DEFAULT_INDEX_SNAPSHOT_INTERVAL_MS;
    this.clock = options.clock ?? Date.now;
    const now = options.recordTimestamp ?? Date.now;
    const caching = options.specs.filter((s) => s.caching).length;
    const cacheBytes = caching === 0 ? 0 : Math.floor((options.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES) / caching);
    for (const spec of options.specs) {
      const stack = new StoreStack(spec, this.taskId, this.changelogTopic(spec.name), options.partition, db, options.collector, cacheBytes);
      if (this.snapshots !== undefined && spec.logging && stack.committed.indexed) {
        stack.snapshotPath = snapshotPath(this.snapshots.dir, spec.name);
        stack.lastSnapshotAt = this.clock();
      }
      this.stacks.set(spec.name, stack);
      this.facades.set(spec.name, facade(stack, spec, now));
    }
  }

  /**
   * Compares each store's recorded shape with its spec (see storeShape.ts): another record format is
   * refused; another local layout only (a retention change) wipes the store for a full restore from its
   * changelog. Records the shapes of new stores.
   */
  async checkShapes(dir: string): Promise<void> {
    const ops: DbOp[] = [];
    const { applicationId } = this.options;
    for (const stack of this.stacks.values()) {
      const stored = this.db.get(META, shapeKey(stack.name))?.toString('utf8');
      const shape = stack.shape;
      if (stored === shape.layout) continue;
      if (stored === undefined) {
        const hasState = stack.checkpoint !== undefined || (await this.db.hasKeys?.(stack.committed.prefix)) === true;
        if (hasState) throw localShapeUnknown(applicationId, this.taskId, stack.name, dir, shape.layout);
      } else if (formatOfLayout(stored) !== shape.format || !stack.spec.logging) {
        throw localShapeMismatch(applicationId, this.taskId, stack.name, dir, stored, shape.layout);
      } else {
        await this.wipeStore(stack); // same records, another local layout: rebuild from the changelog
      }
      ops.push({ prefix: META, key: shapeKey(stack.name), value: Buffer.from(shape.layout, 'utf8') });
    }
    await this.db.write(ops);
  }

  async loadIndexes(): Promise<void> {
    for (const stack of this.stacks.values()) {
      if (stack.snapshotPath === undefined || this.snapshots === undefined) {
        await stack.committed.load();
        continue;
      }
      if (this.openedEmpty) await deleteIndexSnapshot(stack.snapshotPath);
      const source = await stack.committed.load({ path: stack.snapshotPath, dbId: this.snapshots.dbId, checkpoint: stack.checkpoint });
      // the snapshot on disk is exact: no need to write it again until the checkpoint moves
      if (source === 'snapshot') stack.snapshotCheckpoint = stack.checkpoint;
    }
  }

  /** Starts writing a key index snapshot of the store as of its current checkpoint (not awaited). */
  private startSnapshot(stack: StoreStack): Promise<void> | undefined {
    const path = stack.snapshotPath;
    const index = stack.committed.builtIndex;
    const cp = stack.checkpoint;
    if (path === undefined || index === null || cp === undefined || this.snapshots === undefined) return undefined;
    if (stack.snapshotting || stack.snapshotCheckpoint === cp || stack.committed.indexBehind !== undefined) return undefined;
    stack.snapshotting = true;
    stack.lastSnapshotAt = this.clock();
    const chunks = index.snapshotChunks(); // taken now: exactly the committed keys at checkpoint cp
    const write = writeIndexSnapshot(path, this.snapshots.dbId, cp, chunks)
      .then(
        () => {
          stack.snapshotCheckpoint = cp;
        },
        () => {
          // a snapshot is only an optimization: without it the next open scans the database
        },
      )
      .finally(() => {
        stack.snapshotting = false;
        this.snapshotWrites.delete(write);
      });
    this.snapshotWrites.add(write);
    return write;
  }

  private maybeSnapshot(): void {
    const now = this.clock();
    for (const stack of this.stacks.values()) {
      if (stack.snapshotPath !== undefined && now - stack.lastSnapshotAt >= this.snapshotIntervalMs) this.startSnapshot(stack);
    }
  }

  getStore<S extends StateStore = StateStore>(name: string): S {
    const store = this.facades.get(name);
    if (store === undefined) {
      throw new StateStoreError(
        `task ${this.taskId} has no store "${name}"; its stores are: ${[...this.facades.keys()].join(', ') || '(none)'}. ` +
          `Connect the store to the processor that uses it.`,
        { taskId: this.taskId },
      );
    }
    return store as S;
  }

  /**
   * A read-only view of a store's committed state, as the last commit wrote it to the database (no
   * overlay, no cache): what interactive queries may show under exactly-once. Writes through it throw.
   */
  committedView<S extends StateStore = StateStore>(name: string): S {
    const stack = this.stack(name);
    const spec = this.options.specs.find((x) => x.name === name)!;
    const committed = stack.committed;
    const top: BytesLayer = {
      get: (key) => committed.get(key),
      range: (from, to) => committed.range(from, to),
      approximateCount: () => committed.approximateCount(),
      put: () => {
        throw new StateStoreError(`store "${name}" is read-only here: interactive queries cannot write`, { taskId: this.taskId });
      },
    };
    const view = Object.create(stack, { top: { value: top }, cache: { value: undefined } }) as StoreStack;
    return facade(view, spec, () => Date.now()) as S;
  }

  changelogTopic(store: string): string {
    return `${this.options.applicationId}-${store}-changelog`;
  }

  checkpoint(store: string): number | undefined {
    return this.stack(store).checkpoint;
  }

  private stack(name: string): StoreStack {
    const s = this.stacks.get(name);
    if (s === undefined) throw new StateStoreError(`task ${this.taskId} has no store "${name}"`, { taskId: this.taskId });
    return s;
  }

  private checkOpen(): void {
    if (this.closed) throw new StateStoreError(`the stores of task ${this.taskId} are closed`, { taskId: this.taskId });
  }

  async restore(reader: ChangelogReader, listener?: RestoreListener): Promise<void> {
    this.checkOpen();
    for (const stack of this.stacks.values()) {
      if (!stack.spec.logging) continue;
      if (stack.overlay.size > 0 || stack.cache?.isDirty) {
        throw new StateStoreError(`store "${stack.name}" has uncommitted writes: restore before processing`, { taskId: this.taskId });
      }
      try {
        await this.restoreStore(stack, reader, listener);
      } catch (err) {
        if (!(err instanceof ChangelogTruncatedError)) throw err;
        // The log was truncated while we read it: start over from the new beginning.
        await this.wipeStore(stack);
        await this.restoreStore(stack, reader, listener);
      }
    }
  }

  private async restoreStore(stack: StoreStack, reader: ChangelogReader, listener: RestoreListener | undefined): Promise<void> {
    const topic = stack.changelogTopic;
    const partition = stack.partition;
    const begin = await reader.beginningOffset(topic, partition);
    const end = await reader.endOffset(topic, partition);
    const cp = stack.checkpoint;
    if (cp !== undefined && (cp + 1 < begin || cp >= end)) {
      // Truncated changelog (records after the checkpoint were deleted) or a log that is behind the
      // checkpoint (topic recreated): the local state cannot be trusted. Policy: wipe and restore fully.
      await this.wipeStore(stack);
    }
    if (stack.committed.indexBehind !== undefined && stack.checkpoint !== undefined) {
      // The key index came from a snapshot older than the checkpoint: reconcile the keys written
      // between the two (already in the database) instead of scanning the whole store.
      const catchFrom = stack.committed.indexBehind + 1;
      if (catchFrom < begin) {
        await stack.committed.rescan();
      } else {
        try {
          await reader.read(topic, partition, catchFrom, stack.checkpoint + 1, (records) => stack.catchUpIndex(records));
          stack.committed.indexBehind = undefined;
        } catch (err) {
          if (!(err instanceof ChangelogTruncatedError)) throw err;
          await stack.committed.rescan();
        }
      }
    }
    const from = stack.checkpoint === undefined ? begin : stack.checkpoint + 1;
    const progress = { taskId: this.taskId, store: stack.name, restored: 0, total: Math.max(0, end - from) };
    const emit = (fn: ((p: RestoreProgress) => void) | undefined) => fn?.call(listener, { ...progress });
    emit(listener?.onRestoreStart);
    if (from < end) {
      if (end - from > BULK_RESTORE_THRESHOLD) stack.beginBulkRestore();
      try {
        await this.replay(stack, reader, from, end, progress, listener);
      } finally {
        stack.endBulkRestore();
      }
    }
    emit(listener?.onRestoreEnd);
  }

  private async replay(
    stack: StoreStack,
    reader: ChangelogReader,
    from: number,
    end: number,
    progress: { taskId: string; store: string; restored: number; total: number },
    listener: RestoreListener | undefined,
  ): Promise<void> {
    await reader.read(stack.changelogTopic, stack.partition, from, end, async (records) => {
      if (records.length === 0) return;
      const context = { applicationId: this.options.applicationId, taskId: this.taskId, store: stack.name, topic: stack.changelogTopic, offset: 0 };
      for (const r of records) {
        if (r.headers === undefined) continue;
        context.offset = r.offset;
        checkRecordShape(r.headers, stack.shape, context);
      }
      const ops: DbOp[] = [];
      const apply: (readonly [string, Buffer | null])[] = [];
      stack.restoreOps(records, ops, apply);
      const last = (records[records.length - 1] as { offset: number }).offset;
      stack.metaOps(ops, last);
      await this.db.write(ops);
      stack.appliedRestore(apply, last);
      progress.restored += records.length;
      listener?.onBatchRestored?.({ ...progress });
    });
  }

  /** Deletes a store's data and checkpoint in one batch. */
  private async wipeStore(stack: StoreStack): Promise<void> {
    await Promise.all(this.snapshotWrites); // no snapshot of the old state may land after the wipe
    const ops: DbOp[] = [];
    await this.db.loadKeys(stack.committed.prefix, (keys) => {
      for (const k of keys) ops.push(stack.committed.toDbOp(k, null));
    });
    ops.push({ prefix: META, key: checkpointKey(stack.name), value: null }, { prefix: META, key: streamTimeKey(stack.name), value: null });
    await this.db.write(ops);
    stack.committed.resetIndex();
    if (stack.snapshotPath !== undefined) await deleteIndexSnapshot(stack.snapshotPath);
    stack.snapshotCheckpoint = undefined;
    stack.checkpoint = undefined;
    if (stack.segments !== undefined) stack.segments.streamTime = Number.NEGATIVE_INFINITY;
  }

  flush(): void {
    this.checkOpen();
    // A flush listener forwards downstream, which may write other stores' caches: repeat until clean.
    for (let round = 0; ; round++) {
      let flushed = false;
      for (const stack of this.stacks.values()) {
        if (stack.cache?.isDirty) {
          stack.cache.flush();
          flushed = true;
        }
      }
      if (!flushed) return;
      if (round > 1000) throw new StateStoreError(`flush of task ${this.taskId} does not converge: flush listeners keep writing to cached stores in a cycle`, { taskId: this.taskId });
    }
  }

  pendingBytes(): number {
    let n = 0;
    for (const stack of this.stacks.values()) n += stack.pendingBytes();
    return n;
  }

  private collect(changelogOffsets: ReadonlyMap<string, number>): DbOp[] {
    this.checkOpen();
    for (const name of changelogOffsets.keys()) this.stack(name);
    const ops: DbOp[] = [];
    try {
      for (const stack of this.stacks.values()) stack.collectCommit(ops, changelogOffsets.get(stack.name));
    } catch (err) {
      for (const stack of this.stacks.values()) stack.abortPendingCommit();
      throw err;
    }
    return ops;
  }

  async commit(changelogOffsets: ReadonlyMap<string, number>): Promise<void> {
    // memory: all in this call, so a caller that does not await cannot interleave writes
    if (!this.db.persistent) return this.commitSync(changelogOffsets);
    if (this.committing !== undefined) throw new StateStoreError(`task ${this.taskId}: commit() called while a commit is running`, { taskId: this.taskId });
    const ops = this.collect(changelogOffsets);
    this.committing = this.db.write(ops);
    try {
      await this.committing;
    } catch (err) {
      for (const stack of this.stacks.values()) stack.abortPendingCommit();
      throw new StateStoreError(`task ${this.taskId}: writing the commit batch failed; the overlay is kept, the database is unchanged`, {
        taskId: this.taskId,
        cause: err,
      });
    } finally {
      this.committing = undefined;
    }
    for (const stack of this.stacks.values()) stack.afterCommit();
    if (this.snapshots !== undefined) this.maybeSnapshot();
  }

  commitSync(changelogOffsets: ReadonlyMap<string, number>): void {
    if (this.db.persistent) throw new StateStoreError(`commitSync is for the memory backend; use await commit() with leveldb`, { taskId: this.taskId });
    const ops = this.collect(changelogOffsets);
    void this.db.write(ops); // MemoryTaskDb applies synchronously
    for (const stack of this.stacks.values()) stack.afterCommit();
  }

  abort(): void {
    if (this.committing !== undefined) {
      throw new StateStoreError(`task ${this.taskId}: abort() while a commit batch is being written; await commit() first (it either fails and keeps the overlay, or succeeds)`, {
        taskId: this.taskId,
      });
    }
    for (const stack of this.stacks.values()) stack.abort();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.committing?.catch(() => undefined); // let an in-flight commit finish (or fail) first
    this.abort();
    try {
      // a clean close leaves an exact key index snapshot, so the next open skips the key scan
      await Promise.all(this.snapshotWrites);
      for (const stack of this.stacks.values()) await this.startSnapshot(stack);
      await this.db.close();
    } finally {
      await this.lock?.release();
    }
  }
}

function facade(stack: StoreStack, spec: StoreSpec, now: () => number): StateStore {
  switch (spec.kind) {
    case 'keyValue':
      return new TypedKeyValueStore(stack, spec.keySerde, spec.valueSerde, now);
    case 'window':
      return new TypedWindowStore(stack, spec.keySerde, spec.valueSerde, spec.windowSizeMs ?? 0, now);
    case 'session':
      return new TypedSessionStore(stack, spec.keySerde, spec.valueSerde, now);
  }
}
