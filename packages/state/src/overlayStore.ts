import { entryBytes, mergeRange, type BytesLayer } from './bytesLayer.js';
import type { CommittedStore } from './committedStore.js';
import { SortedKeys } from './sortedKeys.js';

/**
 * The transactional overlay: writes not yet committed to Kafka stay here, in memory. Reads see
 * them first. A commit writes `forEachPending()` to the database and then `release()`s exactly the entries
 * it wrote (a newer write made meanwhile stays); `clear()` (abort) drops everything and leaves the
 * database untouched.
 */
/** A pending write; `value` null: deleted. Rewrites of a key update its entry in place. */
export interface OverlayEntry {
  value: Buffer | null;
}

export class OverlayStore implements BytesLayer {
  /** key -> pending write. */
  private readonly writes = new Map<string, OverlayEntry>();
  /**
   * The key of the last get or put and its entry then (undefined: not pending): an update reads the
   * key and then writes it, and the write finds the entry without a second lookup. Reset whenever
   * entries are removed.
   */
  private lastKey: string | undefined;
  private lastEntry: OverlayEntry | undefined;
  /** Sorted pending keys, built at the first range scan and maintained from then on. */
  private keys: SortedKeys | null = null;
  private bytes = 0;
  /** Writes since the last `forEachPending()` (a commit with none in between can drop everything at once). */
  private writesSincePending = 0;

  constructor(readonly committed: CommittedStore) {}

  get(key: string): Buffer | undefined {
    const e = this.writes.get(key);
    this.lastKey = key;
    this.lastEntry = e;
    if (e !== undefined) return e.value === null ? undefined : e.value;
    return this.committed.get(key);
  }

  put(key: string, value: Buffer | null): void {
    const e = key === this.lastKey ? this.lastEntry : this.writes.get(key);
    if (e === undefined) {
      this.keys?.add(key);
      this.bytes += entryBytes(key, value);
      const entry: OverlayEntry = { value };
      this.writes.set(key, entry);
      this.lastKey = key;
      this.lastEntry = entry;
    } else {
      const prev = e.value;
      this.bytes += (value === null ? 0 : value.length) - (prev === null ? 0 : prev.length);
      e.value = value;
    }
    this.writesSincePending++;
  }

  range(from?: string, to?: string): Iterable<readonly [string, Buffer]> {
    if (this.writes.size === 0) return this.committed.range(from, to);
    return mergeRange(this.sortedKeys().range(from, to), (k) => this.writes.get(k)?.value ?? null, this.committed.range(from, to));
  }

  private sortedKeys(): SortedKeys {
    if (this.keys === null) {
      this.keys = new SortedKeys();
      this.keys.appendSorted([...this.writes.keys()].sort());
    }
    return this.keys;
  }

  /** Committed count plus the pending net additions (computed on demand: O(pending)). */
  approximateCount(): number {
    let net = 0;
    for (const [k, e] of this.writes) net += (e.value === null ? 0 : 1) - (this.committed.hasKey(k) ? 1 : 0);
    return Math.max(0, this.committed.approximateCount() + net);
  }

  pendingBytes(): number {
    return this.bytes;
  }

  get size(): number {
    return this.writes.size;
  }

  /** Calls `fn` with each pending write (in no particular order). Starts a commit: see `release`. */
  forEachPending(fn: (value: Buffer | null, key: string) => void): void {
    this.writesSincePending = 0;
    this.writes.forEach((e, k) => fn(e.value, k));
  }

  /**
   * After a commit: drops the entries that were written, unless the key was written again since
   * (same value object = unchanged). With no write since `forEachPending()`, drops everything at once
   * (entries the commit discarded included).
   */
  release(written: readonly { readonly key: string; readonly value: Buffer | null }[]): void {
    if (this.writesSincePending === 0) {
      this.clear();
      return;
    }
    this.lastKey = undefined;
    this.lastEntry = undefined;
    for (const { key, value } of written) {
      const e = this.writes.get(key);
      if (e === undefined || e.value !== value) continue; // absent, or written again since: stays pending
      this.writes.delete(key);
      this.keys?.delete(key);
      this.bytes -= entryBytes(key, value);
    }
    if (this.writes.size === 0) this.bytes = 0;
  }

  clear(): void {
    this.lastKey = undefined;
    this.lastEntry = undefined;
    this.writes.clear();
    this.keys?.clear();
    this.bytes = 0;
    this.writesSincePending = 0;
  }
}
