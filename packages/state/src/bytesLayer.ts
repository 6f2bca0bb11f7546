/**
 * One layer of a store stack at the bytes level. Keys are byte strings (one latin1 char per byte,
 * see sortedKeys.ts), values are Buffers. Every method is synchronous.
 */
export interface BytesLayer {
  get(key: string): Buffer | undefined;
  /**
   * Writes the value; `null` deletes. `timestamp` is the record timestamp (for changelog records);
   * `keyBytes`, if the caller has them, are the key's bytes (saves a conversion for the changelog).
   */
  put(key: string, value: Buffer | null, timestamp: number, keyBytes?: Buffer): void;
  /** Entries with from <= key <= to (bounds optional, inclusive), ascending by byte order. */
  range(from?: string, to?: string): Iterable<readonly [string, Buffer]>;
  /** Approximate number of live entries. */
  approximateCount(): number;
}

/**
 * Merges an upper layer's pending writes (sorted keys, `null` = deleted) over a lower layer's
 * range: the upper layer wins on equal keys and hides deleted keys.
 */
export function* mergeRange(
  upperKeys: Iterable<string>,
  upperValue: (key: string) => Buffer | null,
  lower: Iterable<readonly [string, Buffer]>,
): Generator<readonly [string, Buffer], void, undefined> {
  const ui = upperKeys[Symbol.iterator]();
  const li = lower[Symbol.iterator]();
  let u = ui.next();
  let l = li.next();
  while (!u.done || !l.done) {
    if (l.done || (!u.done && u.value <= l.value[0])) {
      const key = u.value as string;
      if (!l.done && l.value[0] === key) l = li.next();
      const v = upperValue(key);
      u = ui.next();
      if (v !== null) yield [key, v];
    } else {
      const entry = l.value;
      l = li.next();
      yield entry;
    }
  }
}

/** Size accounting for the memory cap: key chars + value bytes + a fixed per-entry overhead. */
export const ENTRY_OVERHEAD = 64;
export function entryBytes(key: string, value: Buffer | null): number {
  return key.length + (value === null ? 0 : value.length) + ENTRY_OVERHEAD;
}
