import type { RecordCollector, StoreSpec } from '@vltava/dsl';
import { StateStoreError } from '@vltava/dsl';
import type { BytesLayer } from './bytesLayer.js';
import { CachingStore } from './cachingStore.js';
import { CommittedStore } from './committedStore.js';
import { LoggingStore } from './loggingStore.js';
import { OverlayStore } from './overlayStore.js';
import { SEGMENT_PREFIX, Segments, defaultSegmentInterval } from './segments.js';
import type { ChangelogRecord } from './api.js';
import { META, type DbOp, type TaskDb } from './taskDb.js';
import { decodeTs, encodeTs, TS_WIDTH } from './timeKey.js';
import { SHAPE_HEADER, storeShapeOf, type StoreShape } from './storeShape.js';

/** Database keys: `\x01 + utf8(store) + \x00 + storeKey` for data, META + `<meta>\x00 + utf8(store)` for metadata. */
export const dataPrefix = (store: string): string => `\x01${Buffer.from(store, 'utf8').toString('latin1')}\x00`;
/** Metadata keys (under the META prefix). */
export const checkpointKey = (store: string): string => `cp\x00${Buffer.from(store, 'utf8').toString('latin1')}`;
export const streamTimeKey = (store: string): string => `st\x00${Buffer.from(store, 'utf8').toString('latin1')}`;
/** The store's shape (its layout string, see storeShape.ts). */
export const shapeKey = (store: string): string => `sh\x00${Buffer.from(store, 'utf8').toString('latin1')}`;

export const DEFAULT_RETENTION_MS = 24 * 3600_000;

/**
 * The bytes-level stack of one store: committed (database + key index) <- overlay <- change-logging
 * <- record cache. The typed facades sit on `top`. The stack also carries the store's checkpoint
 * and, for window and session stores, its time segments.
 */
export class StoreStack {
  readonly committed: CommittedStore;
  readonly overlay: OverlayStore;
  readonly logging: LoggingStore | undefined;
  readonly cache: CachingStore | undefined;
  readonly top: BytesLayer;
  readonly segments: Segments | undefined;
  readonly shape: StoreShape;
  checkpoint: number | undefined;
  /** Key index snapshots (leveldb, logged and indexed stores only). */
  snapshotPath: string | undefined;
  snapshotCheckpoint: number | undefined;
  lastSnapshotAt = 0;
  snapshotting = false;
  /** The store-level writes of the commit being written (applied to the index afterwards). */
  private pendingApply: DbOp[] = [];

  private pendingCheckpoint: number | undefined;

  constructor(
    readonly spec: StoreSpec,
    readonly taskId: string,
    readonly changelogTopic: string,
    readonly partition: number,
    db: TaskDb,
    collector: RecordCollector,
    cacheBytes: number,
  ) {
    this.shape = storeShapeOf(spec);
    const indexed = spec.kind !== 'keyValue' || spec.rangeScans !== false;
    this.committed = new CommittedStore(spec.name, db, dataPrefix(spec.name), indexed);
    this.overlay = new OverlayStore(this.committed);
    let top: BytesLayer = this.overlay;
    if (spec.kind !== 'keyValue') {
      const retention = spec.retentionMs ?? DEFAULT_RETENTION_MS;
      if (!(retention > 0)) throw new StateStoreError(`store "${spec.name}": retentionMs must be > 0, got ${retention}`, { taskId });
      this.segments = new Segments(retention, defaultSegmentInterval(retention), spec.kind === 'window' ? TS_WIDTH : 2 * TS_WIDTH);
    }
    if (spec.logging) {
      this.logging = new LoggingStore(top, collector, changelogTopic, partition, this.segments ? SEGMENT_PREFIX : 0, {
        [SHAPE_HEADER]: this.shape.fingerprintBytes,
      });
      top = this.logging;
    }
    if (spec.caching && cacheBytes > 0) {
      this.cache = new CachingStore(top, cacheBytes);
      top = this.cache;
    }
    this.top = top;
    this.checkpoint = readOffset(db.get(META, checkpointKey(spec.name)));
    if (this.segments !== undefined) {
      const st = db.get(META, streamTimeKey(spec.name));
      if (st !== undefined) this.segments.streamTime = decodeTs(st.toString('latin1'), 0);
    }
  }

  get name(): string {
    return this.spec.name;
  }

  pendingBytes(): number {
    return this.overlay.pendingBytes() + (this.cache?.pendingBytes() ?? 0);
  }

  /** Adds this store's part of the task's commit batch; `afterCommit` applies it in memory. */
  collectCommit(ops: DbOp[], changelogOffset: number | undefined): void {
    if (this.cache?.isDirty) {
      throw new StateStoreError(
        `store "${this.name}" has unflushed cache entries at commit: call flush() before the Kafka commit, so that their changelog records are in the transaction`,
        { taskId: this.taskId },
      );
    }
    if (changelogOffset !== undefined && this.checkpoint !== undefined && changelogOffset < this.checkpoint) {
      throw new StateStoreError(
        `store "${this.name}": changelog offset ${changelogOffset} is below the checkpoint ${this.checkpoint}; checkpoints never move backwards (this is a bug in the caller)`,
        { taskId: this.taskId },
      );
    }
    const bound = this.segments?.expiredBound();
    const committed = this.committed;
    const apply: DbOp[] = [];
    this.overlay.forEachPending((value, k) => {
      if (bound === undefined || k >= bound) apply.push(committed.toDbOp(k, value)); // else: expired segment, never written
    });
    for (let i = 0; i < apply.length; i++) ops.push(apply[i]!);
    if (bound !== undefined) {
      const index = this.committed.index;
      if (index !== null) {
        for (const k of index.range()) {
          if (k >= bound) break;
          const op = this.committed.toDbOp(k, null);
          ops.push(op);
          apply.push(op);
        }
      }
    }
    this.metaOps(ops, changelogOffset);
    this.pendingApply = apply;
    this.pendingCheckpoint = changelogOffset;
  }

  /** The checkpoint (if given) and the observed stream time, written in the same batch as the data. */
  metaOps(ops: DbOp[], changelogOffset: number | undefined): void {
    if (changelogOffset !== undefined) ops.push({ prefix: META, key: checkpointKey(this.name), value: offsetBytes(changelogOffset) });
    if (this.segments !== undefined && this.segments.streamTime !== Number.NEGATIVE_INFINITY) {
      ops.push({ prefix: META, key: streamTimeKey(this.name), value: Buffer.from(encodeTs(this.segments.streamTime), 'latin1') });
    }
  }

  afterCommit(): void {
    this.committed.appliedAll(this.pendingApply);
    // every overlay entry was written, or dropped as expired: release them (unless written since;
    // expired entries written since are dropped again by the next commit)
    this.overlay.release(this.pendingApply);
    this.pendingApply = [];
    if (this.pendingCheckpoint !== undefined) this.checkpoint = this.pendingCheckpoint;
    this.pendingCheckpoint = undefined;
  }

  /** Forgets a collected commit whose batch was not written (the overlay stays). */
  abortPendingCommit(): void {
    this.pendingApply = [];
    this.pendingCheckpoint = undefined;
  }

  /** Drops everything uncommitted (cache and overlay); the database is untouched. */
  abort(): void {
    this.cache?.clear();
    this.overlay.clear();
    this.pendingApply = [];
    this.pendingCheckpoint = undefined;
  }

  /** Turns a batch of changelog records into database operations (restore path, no changelog). */
  restoreOps(records: readonly ChangelogRecord[], ops: DbOp[], apply: (readonly [string, Buffer | null])[]): void {
    const segments = this.segments;
    for (const r of records) {
      let key = r.key.toString('latin1');
      if (segments !== undefined) {
        const t = segments.timeOfChangelogKey(key);
        segments.observe(t);
        key = segments.storeKey(key, t);
      }
      ops.push(this.committed.toDbOp(key, r.value));
      apply.push([key, r.value]);
    }
  }

  /** Index catch-up from a stale snapshot: records already in the database, keys only. */
  catchUpIndex(records: readonly ChangelogRecord[]): void {
    const segments = this.segments;
    for (const r of records) {
      let key = r.key.toString('latin1');
      if (segments !== undefined) key = segments.storeKey(key, segments.timeOfChangelogKey(key));
      this.committed.reconcile(key);
    }
  }

  /** During a long restore: key -> present, applied to the index once at the end. */
  private deferredIndex: Map<string, boolean> | undefined;

  /** A long restore defers key index updates to one sorted merge at the end (`endBulkRestore`). */
  beginBulkRestore(): void {
    if (this.committed.builtIndex !== null) this.deferredIndex = new Map();
  }

  endBulkRestore(): void {
    const deferred = this.deferredIndex;
    this.deferredIndex = undefined;
    if (deferred === undefined) return;
    const ops: DbOp[] = [];
    for (const [key, present] of deferred) ops.push({ prefix: this.committed.prefix, key, value: present ? EMPTY : null });
    this.committed.appliedAll(ops);
  }

  appliedRestore(apply: readonly (readonly [string, Buffer | null])[], checkpoint: number): void {
    this.checkpoint = checkpoint;
    const deferred = this.deferredIndex;
    if (deferred !== undefined) {
      for (const [k, v] of apply) deferred.set(k, v !== null);
      return;
    }
    // the last write of each key in the batch decides; then one bulk index update
    const last = new Map<string, Buffer | null>();
    for (const [k, v] of apply) last.set(k, v);
    const ops: DbOp[] = [];
    for (const [key, value] of last) ops.push({ prefix: this.committed.prefix, key, value });
    this.committed.appliedAll(ops);
  }
}

const EMPTY = Buffer.alloc(0);

export function offsetBytes(offset: number): Buffer {
  return Buffer.from(encodeTs(offset), 'latin1');
}

function readOffset(b: Buffer | undefined): number | undefined {
  return b === undefined ? undefined : decodeTs(b.toString('latin1'), 0);
}
