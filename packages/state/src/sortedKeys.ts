/**
 * A sorted set of keys held in memory, used as the key index of a store so that range scans are
 * synchronous (LevelDB iterators in classic-level are async only; values are read with getSync).
 *
 * Keys are byte strings: each byte of the serialized key is one char of a `latin1` string. JS compares
 * strings by UTF-16 code unit, and a latin1 char's code unit is its byte, so `<` on these strings is
 * exactly LevelDB's bytewise order. V8 stores them as one-byte strings (one byte per key byte).
 *
 * The structure is a two-level chunked array (a B+-tree of depth two): a sorted list of sorted
 * chunks of at most CHUNK keys. Lookup, insert and delete cost O(log n + CHUNK), range scans are
 * sequential, and bulk loading from a sorted source appends whole chunks.
 */
const CHUNK = 512;

export class SortedKeys {
  private chunks: string[][] = [];
  private count = 0;
  /** Bumped by every structural change, so that live range iterators can re-find their place. */
  private version = 0;

  get size(): number {
    return this.count;
  }

  clear(): void {
    this.chunks = [];
    this.count = 0;
    this.version++;
  }

  /** Appends keys known to be sorted and greater than every key already present (bulk load). */
  appendSorted(keys: readonly string[]): void {
    let last = this.chunks[this.chunks.length - 1];
    for (const k of keys) {
      if (last === undefined || last.length >= CHUNK) {
        last = [];
        this.chunks.push(last);
      }
      last.push(k);
    }
    this.count += keys.length;
    this.version++;
  }

  /** Index of the chunk that would hold `key`: the last chunk whose first key is <= key (or 0). */
  private chunkFor(key: string): number {
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((chunks[mid] as string[])[0]! <= key) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  has(key: string): boolean {
    if (this.count === 0) return false;
    const chunk = this.chunks[this.chunkFor(key)] as string[];
    const i = lowerBound(chunk, key);
    return i < chunk.length && chunk[i] === key;
  }

  /** Adds the key; returns true if it was not present. */
  add(key: string): boolean {
    if (this.chunks.length === 0) {
      this.chunks.push([key]);
      this.count = 1;
      return true;
    }
    const ci = this.chunkFor(key);
    const chunk = this.chunks[ci] as string[];
    const i = lowerBound(chunk, key);
    if (i < chunk.length && chunk[i] === key) return false;
    chunk.splice(i, 0, key);
    this.count++;
    this.version++;
    if (chunk.length > CHUNK * 2) this.chunks.splice(ci + 1, 0, chunk.splice(CHUNK));
    return true;
  }

  /** Removes the key; returns true if it was present. */
  delete(key: string): boolean {
    if (this.count === 0) return false;
    const ci = this.chunkFor(key);
    const chunk = this.chunks[ci] as string[];
    const i = lowerBound(chunk, key);
    if (i >= chunk.length || chunk[i] !== key) return false;
    chunk.splice(i, 1);
    this.count--;
    this.version++;
    if (chunk.length === 0) this.chunks.splice(ci, 1);
    return true;
  }

  /**
   * Keys with from <= key <= to (either bound optional), ascending. Safe against writes made while
   * iterating: after a change the iterator re-finds its place after the last key it yielded.
   */
  *range(from?: string, to?: string): Generator<string, void, undefined> {
    if (this.count === 0) return;
    let ci = from === undefined ? 0 : this.chunkFor(from);
    let i = from === undefined ? 0 : lowerBound(this.chunks[ci] as string[], from);
    let seen = this.version;
    let lastYielded: string | undefined;
    for (;;) {
      if (seen !== this.version) {
        seen = this.version;
        if (this.count === 0) return;
        // re-find: the first key > the last yielded key
        const last = lastYielded as string;
        ci = this.chunkFor(last);
        i = lowerBound(this.chunks[ci] as string[], last);
        const c = this.chunks[ci] as string[];
        if (i < c.length && c[i] === last) i++;
      }
      const chunk = this.chunks[ci];
      if (chunk === undefined) return;
      if (i >= chunk.length) {
        ci++;
        i = 0;
        continue;
      }
      const k = chunk[i] as string;
      if (to !== undefined && k > to) return;
      i++;
      lastYielded = k;
      yield k;
    }
  }

  /** A private copy of the sorted keys, chunk by chunk (cheap: copies references, not strings). */
  snapshotChunks(): string[][] {
    return this.chunks.map((c) => c.slice());
  }

  /** The greatest key, if any. */
  last(): string | undefined {
    const chunk = this.chunks[this.chunks.length - 1];
    return chunk?.[chunk.length - 1];
  }
}

function lowerBound(arr: readonly string[], key: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((arr[mid] as string) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
