import { StateStoreError } from '@vltava/dsl';
import type { BytesLayer } from './bytesLayer.js';
import { deleteIndexSnapshot, readIndexSnapshot } from './indexSnapshot.js';
import { SortedKeys } from './sortedKeys.js';
import type { DbOp, TaskDb } from './taskDb.js';

/**
 * The committed state of one store: its slice of the task database (under `prefix`) plus the
 * in-memory key index that makes range scans synchronous. Writes never go through here on the
 * per-record path; they arrive as committed batches (`applied`) after the task's atomic write.
 */
export class CommittedStore implements Omit<BytesLayer, 'put'> {
  /** null: a point-only store (no range scans, no key index; see StoreSpec.rangeScans). */
  readonly index: SortedKeys | null;
  /**
   * Set when the index was loaded from a snapshot older than the database checkpoint: the index
   * reflects this changelog offset, and `restore` must bring it up to date before any range scan.
   */
  indexBehind: number | undefined;

  constructor(
    readonly storeName: string,
    private readonly db: TaskDb,
    readonly prefix: string,
    indexed: boolean,
  ) {
    this.index = indexed ? new SortedKeys() : null;
  }

  /**
   * Loads the key index at open: from a snapshot if one matches this database and is not ahead of
   * the checkpoint (then `indexBehind` tells restore where to catch up from), else from the database.
   */
  async load(snapshot?: { readonly path: string; readonly dbId: string; readonly checkpoint: number | undefined }): Promise<void> {
    const index = this.index;
    if (index === null) return;
    index.clear();
    this.indexBehind = undefined;
    if (snapshot !== undefined) {
      const snap = snapshot.checkpoint === undefined ? undefined : await readIndexSnapshot(snapshot.path);
      if (snap !== undefined && snap.dbId === snapshot.dbId && snapshot.checkpoint !== undefined && snap.checkpoint <= snapshot.checkpoint) {
        index.appendPacked(snap.chunks);
        if (snap.checkpoint < snapshot.checkpoint) this.indexBehind = snap.checkpoint;
        return;
      }
      if (snap !== undefined) await deleteIndexSnapshot(snapshot.path);
    }
    await this.rescan();
  }

  /** Rebuilds the key index from the database (async key iteration). */
  async rescan(): Promise<void> {
    const index = this.index;
    if (index === null) return;
    index.clear();
    this.indexBehind = undefined;
    await this.db.loadKeys(this.prefix, (keys) => index.appendSorted(keys));
  }

  /** Index catch-up after a stale snapshot: the key's presence in the database is the truth. */
  reconcile(key: string): void {
    if (this.index === null) return;
    if (this.db.get(this.prefix + key) === undefined) this.index.delete(key);
    else this.index.add(key);
  }

  get(key: string): Buffer | undefined {
    return this.db.get(this.prefix + key);
  }

  *range(from?: string, to?: string): Generator<readonly [string, Buffer], void, undefined> {
    const index = this.index;
    if (this.indexBehind !== undefined) {
      throw new StateStoreError(`store "${this.storeName}": its key index is being brought up to date; call restore() before processing`);
    }
    if (index === null) throw new StateStoreError(`store "${this.storeName}" was declared without range scans (rangeScans: false); declare it with rangeScans: true to use range(), all() or prefixScan()`);
    for (const k of index.range(from, to)) {
      const v = this.db.get(this.prefix + k);
      if (v !== undefined) yield [k, v];
    }
  }

  approximateCount(): number {
    return this.index?.size ?? 0;
  }

  /** Turns store-level writes into database operations under this store's prefix. */
  toDbOp(key: string, value: Buffer | null): DbOp {
    return { key: this.prefix + key, value };
  }

  /** Called after a batch with these store-level writes reached the database. */
  applied(key: string, value: Buffer | null): void {
    if (this.index === null) return;
    if (value === null) this.index.delete(key);
    else this.index.add(key);
  }
}
