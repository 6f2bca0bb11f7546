import type { BytesLayer } from './bytesLayer.js';
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

  constructor(
    readonly storeName: string,
    private readonly db: TaskDb,
    readonly prefix: string,
    indexed: boolean,
  ) {
    this.index = indexed ? new SortedKeys() : null;
  }

  /** Loads the key index from the database (at open). */
  async load(): Promise<void> {
    const index = this.index;
    if (index === null) return;
    index.clear();
    await this.db.loadKeys(this.prefix, (keys) => index.appendSorted(keys));
  }

  get(key: string): Buffer | undefined {
    return this.db.get(this.prefix + key);
  }

  *range(from?: string, to?: string): Generator<readonly [string, Buffer], void, undefined> {
    const index = this.index;
    if (index === null) throw new Error(`store "${this.storeName}" was declared without range scans (rangeScans: false); declare it with rangeScans: true to use range(), all() or prefixScan()`);
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
