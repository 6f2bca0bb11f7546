import { StateStoreError } from '@vltava/dsl';
import type { BytesLayer } from './bytesLayer.js';
import { deleteIndexSnapshot, readIndexSnapshot } from './indexSnapshot.js';
import { SortedKeys } from './sortedKeys.js';
import type { DbOp, TaskDb } from './taskDb.js';

/**
 * The committed state of one store: its slice of the task database (under `prefix`) plus the
 * in-memory key index that makes range scans synchronous. Writes never go through here on the
 * per-record path; they arrive as committed batches (`applied`) after the task's atomic write.
 *
 * LevelDB: the index is loaded at open (snapshot or key scan). Memory: it is built on the first
 * range scan from the store's Map and maintained from then on, so point-only use costs nothing.
 */
export class CommittedStore implements Omit<BytesLayer, 'put'> {
  /** null: a point-only store (no range scans, no key index; see StoreSpec.rangeScans). */
  private readonly sorted: SortedKeys | null;
  /** Whether `sorted` holds exactly the committed keys (else it is built on demand, memory only). */
  private ready = false;
  /**
   * Set when the index was loaded from a snapshot older than the database checkpoint: the index
   * reflects this changelog offset, and `restore` must bring it up to date before any range scan.
   */
  indexBehind: number | undefined;
  /** Point reads of this store's keys. */
  readonly get: (key: string) => Buffer | undefined;

  constructor(
    readonly storeName: string,
    private readonly db: TaskDb,
    readonly prefix: string,
    indexed: boolean,
  ) {
    this.sorted = indexed ? new SortedKeys() : null;
    this.get = db.reader?.(prefix) ?? ((key) => db.get(prefix, key));
  }

  /** The key index, built now if it is built on demand; null for point-only stores. */
  get index(): SortedKeys | null {
    const sorted = this.sorted;
    if (sorted === null || this.ready) return sorted;
    const keys = this.db.keysSync?.(this.prefix);
    if (keys === undefined) {
      throw new StateStoreError(`store "${this.storeName}": its key index is not loaded (open the stores with openTaskStores)`);
    }
    sorted.clear();
    sorted.appendSorted(keys);
    this.ready = true;
    return sorted;
  }

  /** Whether the store has a key index at all (false: point-only). */
  get indexed(): boolean {
    return this.sorted !== null;
  }

  /** The index if it is built, without building it. */
  get builtIndex(): SortedKeys | null {
    return this.ready ? this.sorted : null;
  }

  /** Whether the committed store holds the key (cheap: index, or a Map read on the memory backend). */
  hasKey(key: string): boolean {
    if (this.ready && this.sorted !== null) return this.sorted.has(key);
    if (!this.db.persistent) return this.db.get(this.prefix, key) !== undefined;
    return false; // point-only LevelDB store: not counted (approximateNumEntries is approximate)
  }

  /**
   * Loads the key index at open (LevelDB): from a snapshot if one matches this database and is not
   * ahead of the checkpoint (then `indexBehind` tells restore where to catch up from), else by a scan.
   */
  async load(snapshot?: { readonly path: string; readonly dbId: string; readonly checkpoint: number | undefined }): Promise<'snapshot' | 'stale-snapshot' | 'scan' | 'none'> {
    const index = this.sorted;
    if (index === null) return 'none';
    index.clear();
    this.indexBehind = undefined;
    if (snapshot !== undefined) {
      const snap = snapshot.checkpoint === undefined ? undefined : await readIndexSnapshot(snapshot.path);
      if (snap !== undefined && snap.dbId === snapshot.dbId && snapshot.checkpoint !== undefined && snap.checkpoint <= snapshot.checkpoint) {
        index.appendPacked(snap.chunks);
        this.ready = true;
        if (snap.checkpoint === snapshot.checkpoint) return 'snapshot';
        this.indexBehind = snap.checkpoint;
        return 'stale-snapshot';
      }
      if (snap !== undefined) await deleteIndexSnapshot(snapshot.path);
    }
    await this.rescan();
    return 'scan';
  }

  /** Rebuilds the key index from the database (async key iteration). */
  async rescan(): Promise<void> {
    const index = this.sorted;
    if (index === null) return;
    index.clear();
    this.indexBehind = undefined;
    await this.db.loadKeys(this.prefix, (keys) => index.appendSorted(keys));
    this.ready = true;
  }

  /** Forgets the index (after a wipe); it is rebuilt on demand or by `load`. */
  resetIndex(): void {
    this.sorted?.clear();
    this.indexBehind = undefined;
    this.ready = this.db.persistent; // LevelDB: the (now empty) store's index is exact
  }

  /** Index catch-up after a stale snapshot: the key's presence in the database is the truth. */
  reconcile(key: string): void {
    if (this.sorted === null) return;
    if (this.db.get(this.prefix, key) === undefined) this.sorted.delete(key);
    else this.sorted.add(key);
  }

  *range(from?: string, to?: string): Generator<readonly [string, Buffer], void, undefined> {
    if (this.indexBehind !== undefined) {
      throw new StateStoreError(`store "${this.storeName}": its key index is being brought up to date; call restore() before processing`);
    }
    if (this.sorted === null) {
      throw new StateStoreError(
        `store "${this.storeName}" was declared without range scans (rangeScans: false); declare it with rangeScans: true to use range(), all() or prefixScan()`,
      );
    }
    const index = this.index as SortedKeys;
    for (const k of index.range(from, to)) {
      const v = this.db.get(this.prefix, k);
      if (v !== undefined) yield [k, v];
    }
  }

  approximateCount(): number {
    return this.index?.size ?? 0;
  }

  /** Turns store-level writes into database operations under this store's prefix. */
  toDbOp(key: string, value: Buffer | null): DbOp {
    return { prefix: this.prefix, key, value };
  }

  /** Called after a batch with these store-level writes reached the database (bulk form). */
  appliedAll(ops: readonly DbOp[]): void {
    const sorted = this.sorted;
    if (!this.ready || sorted === null || ops.length === 0) return;
    const puts: string[] = [];
    for (const op of ops) {
      if (op.value === null) sorted.delete(op.key);
      else puts.push(op.key);
    }
    puts.sort();
    sorted.addSorted(puts);
  }

  /** Called after a batch with these store-level writes reached the database. */
  applied(key: string, value: Buffer | null): void {
    if (!this.ready || this.sorted === null) return;
    if (value === null) this.sorted.delete(key);
    else this.sorted.add(key);
  }
}
