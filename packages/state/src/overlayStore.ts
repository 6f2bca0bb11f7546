import { entryBytes, mergeRange, type BytesLayer } from './bytesLayer.js';
import type { CommittedStore } from './committedStore.js';
import { SortedKeys } from './sortedKeys.js';

interface OverlayEntry {
  value: Buffer | null;
  /** 1 if the committed store held the key when this entry was created (for the entry count). */
  wasPresent: number;
}

/**
 * The transactional overlay: writes not yet committed to Kafka stay here, in memory. Reads see
 * them first. A commit writes `pending()` to the database and then `release()`s exactly the entries
 * it wrote (a newer write made meanwhile stays); `clear()` (abort) drops everything and leaves the
 * database untouched.
 */
export class OverlayStore implements BytesLayer {
  private readonly writes = new Map<string, OverlayEntry>();
  private readonly keys = new SortedKeys();
  private bytes = 0;
  private netAdded = 0;

  constructor(readonly committed: CommittedStore) {}

  get(key: string): Buffer | undefined {
    const e = this.writes.get(key);
    if (e !== undefined) return e.value === null ? undefined : e.value;
    return this.committed.get(key);
  }

  put(key: string, value: Buffer | null): void {
    const e = this.writes.get(key);
    if (e === undefined) {
      const index = this.committed.index;
      const wasPresent = index !== null && index.has(key) ? 1 : 0;
      this.writes.set(key, { value, wasPresent });
      this.keys.add(key);
      this.bytes += entryBytes(key, value);
      this.netAdded += (value === null ? 0 : 1) - wasPresent;
    } else {
      this.bytes += (value === null ? 0 : value.length) - (e.value === null ? 0 : e.value.length);
      this.netAdded += (value === null ? 0 : 1) - (e.value === null ? 0 : 1);
      e.value = value;
    }
  }

  range(from?: string, to?: string): Iterable<readonly [string, Buffer]> {
    if (this.writes.size === 0) return this.committed.range(from, to);
    return mergeRange(this.keys.range(from, to), (k) => this.writes.get(k)?.value ?? null, this.committed.range(from, to));
  }

  approximateCount(): number {
    return Math.max(0, this.committed.approximateCount() + this.netAdded);
  }

  pendingBytes(): number {
    return this.bytes;
  }

  get size(): number {
    return this.writes.size;
  }

  /** The pending writes in key order. */
  *pending(): Generator<readonly [string, Buffer | null], void, undefined> {
    for (const k of this.keys.range()) yield [k, (this.writes.get(k) as OverlayEntry).value];
  }

  /**
   * After a commit: drops the entries that were written (or deliberately discarded), unless the key
   * was written again since (same value object = unchanged). Keys not in the overlay are ignored.
   */
  release(written: readonly (readonly [string, Buffer | null])[]): void {
    for (const [k, v] of written) {
      const e = this.writes.get(k);
      if (e === undefined) continue;
      if (e.value === v) {
        this.writes.delete(k);
        this.keys.delete(k);
        this.bytes -= entryBytes(k, v);
        this.netAdded -= (v === null ? 0 : 1) - e.wasPresent;
      } else {
        // a newer write: it stays pending, now relative to the committed value v
        const nowPresent = v === null ? 0 : 1;
        this.netAdded += e.wasPresent - nowPresent;
        e.wasPresent = nowPresent;
      }
    }
    if (this.writes.size === 0) {
      this.bytes = 0;
      this.netAdded = 0;
    }
  }

  clear(): void {
    this.writes.clear();
    this.keys.clear();
    this.bytes = 0;
    this.netAdded = 0;
  }
}
