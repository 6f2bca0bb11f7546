import { entryBytes, mergeRange, type BytesLayer } from './bytesLayer.js';
import type { CommittedStore } from './committedStore.js';
import { SortedKeys } from './sortedKeys.js';

/**
 * The transactional overlay: writes not yet committed to Kafka stay here, in memory. Reads see
 * them first. `drain()` hands them to the task commit (one atomic batch with the checkpoints);
 * `clear()` (abort) drops them and leaves the database untouched.
 */
export class OverlayStore implements BytesLayer {
  private readonly writes = new Map<string, Buffer | null>();
  private readonly keys = new SortedKeys();
  private bytes = 0;
  private netAdded = 0;

  constructor(readonly committed: CommittedStore) {}

  get(key: string): Buffer | undefined {
    const w = this.writes.get(key);
    if (w !== undefined) return w === null ? undefined : w;
    return this.committed.get(key);
  }

  put(key: string, value: Buffer | null): void {
    const prev = this.writes.get(key);
    let before: number;
    if (prev === undefined) {
      this.keys.add(key);
      this.bytes += entryBytes(key, value);
      const index = this.committed.index;
      before = index !== null && index.has(key) ? 1 : 0;
    } else {
      this.bytes += (value === null ? 0 : value.length) - (prev === null ? 0 : prev.length);
      before = prev === null ? 0 : 1;
    }
    this.netAdded += (value === null ? 0 : 1) - before;
    this.writes.set(key, value);
  }

  range(from?: string, to?: string): Iterable<readonly [string, Buffer]> {
    if (this.writes.size === 0) return this.committed.range(from, to);
    return mergeRange(this.keys.range(from, to), (k) => this.writes.get(k) ?? null, this.committed.range(from, to));
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
    for (const k of this.keys.range()) yield [k, this.writes.get(k) as Buffer | null];
  }

  clear(): void {
    this.writes.clear();
    this.keys.clear();
    this.bytes = 0;
    this.netAdded = 0;
  }
}
