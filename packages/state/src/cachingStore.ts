import { entryBytes, mergeRange, type BytesLayer } from './bytesLayer.js';
import { SortedKeys } from './sortedKeys.js';

/** Bytes-level flush listener: the new and the old value (`null`: absent) of a flushed key. */
export type BytesFlushListener = (key: string, newValue: Buffer | null, oldValue: Buffer | null, timestamp: number) => void;

interface DirtyEntry {
  value: Buffer | null;
  keyBytes: Buffer | undefined;
  readonly old: Buffer | null;
  timestamp: number;
}

/**
 * The record cache: writes between flushes stay here and collapse per key. `flush()` writes each
 * dirty key once to the layer below (so one changelog record per key) and calls the flush listener
 * once per key (one downstream update). When the cache exceeds `maxBytes` it flushes early.
 */
export class CachingStore implements BytesLayer {
  private dirty = new Map<string, DirtyEntry>();
  /** Sorted dirty keys, built at the first range scan and maintained from then on. */
  private keys: SortedKeys | null = null;
  private bytes = 0;
  listener: BytesFlushListener | undefined;

  constructor(
    private readonly inner: BytesLayer,
    public maxBytes: number,
  ) {}

  get(key: string): Buffer | undefined {
    const e = this.dirty.get(key);
    if (e !== undefined) return e.value === null ? undefined : e.value;
    return this.inner.get(key);
  }

  put(key: string, value: Buffer | null, timestamp: number, keyBytes?: Buffer): void {
    const e = this.dirty.get(key);
    if (e !== undefined) {
      this.bytes += (value === null ? 0 : value.length) - (e.value === null ? 0 : e.value.length);
      e.value = value;
      e.timestamp = timestamp;
    } else {
      // the old value only matters to a flush listener (set it before the first write)
      this.dirty.set(key, { value, keyBytes, old: this.listener === undefined ? null : (this.inner.get(key) ?? null), timestamp });
      this.keys?.add(key);
      this.bytes += entryBytes(key, value);
    }
    if (this.bytes > this.maxBytes) this.flush();
  }

  range(from?: string, to?: string): Iterable<readonly [string, Buffer]> {
    if (this.dirty.size === 0) return this.inner.range(from, to);
    return mergeRange(this.sortedKeys().range(from, to), (k) => this.dirty.get(k)?.value ?? null, this.inner.range(from, to));
  }

  private sortedKeys(): SortedKeys {
    if (this.keys === null) {
      this.keys = new SortedKeys();
      this.keys.appendSorted([...this.dirty.keys()].sort());
    }
    return this.keys;
  }

  /** The layer below's count plus the cache's net additions (computed on demand: O(dirty)). */
  approximateCount(): number {
    let net = 0;
    for (const [k, e] of this.dirty) net += (e.value === null ? 0 : 1) - (this.inner.get(k) === undefined ? 0 : 1);
    return Math.max(0, this.inner.approximateCount() + net);
  }

  get isDirty(): boolean {
    return this.dirty.size > 0;
  }

  pendingBytes(): number {
    return this.bytes;
  }

  /** Writes every dirty key once to the layer below (in first-write order) and notifies the listener. */
  flush(): void {
    if (this.dirty.size === 0) return;
    // the listener may write to the cache again: those writes go to a fresh map
    const dirty = this.dirty;
    this.dirty = new Map();
    this.keys?.clear();
    this.bytes = 0;
    const listener = this.listener;
    const inner = this.inner;
    dirty.forEach((e, key) => {
      inner.put(key, e.value, e.timestamp, e.keyBytes);
      if (listener !== undefined && !(e.value === null && e.old === null)) listener(key, e.value, e.old, e.timestamp);
    });
  }

  /** Drops the dirty entries without writing them (abort). */
  clear(): void {
    this.dirty.clear();
    this.keys?.clear();
    this.bytes = 0;
  }
}
