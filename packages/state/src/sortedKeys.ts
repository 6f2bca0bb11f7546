/**
 * A sorted set of keys held in memory, used as the key index of a store so that range scans are
 * synchronous (LevelDB iterators in classic-level are async only; values are read with getSync).
 *
 * Keys are byte strings: each byte of the serialized key is one char of a `latin1` string. JS compares
 * strings by UTF-16 code unit, and a latin1 char's code unit is its byte, so `<` on these strings is
 * exactly LevelDB's bytewise order. V8 stores them as one-byte strings (one byte per key byte).
 *
 * The structure is a two-level chunked array (a B+-tree of depth two): a sorted list of sorted
 * chunks of at most 2 * CHUNK (512) keys. Lookup, insert and delete cost O(log n + CHUNK), range scans are
 * sequential, and bulk loading from a sorted source appends whole chunks.
 *
 * Chunks loaded from a key index snapshot stay *packed* (a region of the snapshot string) until
 * first touched, so loading a snapshot costs one pass over the key lengths, not one string per key,
 * and a chunk never touched is written back to the next snapshot as the same bytes.
 */
const CHUNK = 256;

/** Packed chunk: `count` keys, each as 4 chars of big-endian length + key chars, at src[at, end). */
export interface PackedChunk {
  readonly src: string;
  readonly at: number;
  readonly end: number;
  readonly count: number;
  readonly first: string;
}

/** A snapshot-ready chunk: unpacked keys, or a packed region copied verbatim. */
export type ChunkSnapshot = readonly string[] | PackedChunk;

function readLength(s: string, at: number): number {
  return s.charCodeAt(at) * 16777216 + (s.charCodeAt(at + 1) << 16) + (s.charCodeAt(at + 2) << 8) + s.charCodeAt(at + 3);
}

export class SortedKeys {
  /** Unpacked chunks; `[]` is the placeholder of a packed chunk (real chunks are never empty). */
  private chunks: string[][] = [];
  /** Parallel to `chunks`: the packed form, or undefined once unpacked. */
  private packed: (PackedChunk | undefined)[] = [];
  private count = 0;
  /** Bumped by every structural change, so that live range iterators can re-find their place. */
  private version = 0;

  get size(): number {
    return this.count;
  }

  clear(): void {
    this.chunks = [];
    this.packed = [];
    this.count = 0;
    this.version++;
  }

  /** Appends keys known to be sorted and greater than every key already present (bulk load). */
  appendSorted(keys: readonly string[]): void {
    let ci = this.chunks.length - 1;
    if (ci >= 0) this.unpack(ci);
    let last = this.chunks[ci];
    for (const k of keys) {
      if (last === undefined || last.length >= CHUNK) {
        last = [];
        this.chunks.push(last);
        this.packed.push(undefined);
      }
      last.push(k);
    }
    this.count += keys.length;
    this.version++;
  }

  /**
   * Appends packed chunks (from a snapshot; sorted, greater than any key present). Their keys are
   * materialized when a chunk is first touched.
   */
  appendPacked(chunks: readonly PackedChunk[]): void {
    for (const c of chunks) {
      this.chunks.push([]);
      this.packed.push(c);
      this.count += c.count;
    }
    this.version++;
  }

  /** Materializes a packed chunk's keys. */
  private unpack(ci: number): string[] {
    const pc = this.packed[ci];
    const chunk = this.chunks[ci] as string[];
    if (pc === undefined) return chunk;
    const { src } = pc;
    let p = pc.at;
    for (let j = 0; j < pc.count; j++) {
      const len = readLength(src, p);
      chunk.push(src.slice(p + 4, p + 4 + len));
      p += 4 + len;
    }
    this.packed[ci] = undefined;
    return chunk;
  }

  private firstOf(ci: number): string {
    const pc = this.packed[ci];
    return pc !== undefined ? pc.first : ((this.chunks[ci] as string[])[0] as string);
  }

  /** Index of the chunk that would hold `key`: the last chunk whose first key is <= key (or 0). */
  private chunkFor(key: string): number {
    let lo = 0;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.firstOf(mid) <= key) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  has(key: string): boolean {
    if (this.count === 0) return false;
    const chunk = this.unpack(this.chunkFor(key));
    const i = lowerBound(chunk, key);
    return i < chunk.length && chunk[i] === key;
  }

  /** Adds the key; returns true if it was not present. */
  add(key: string): boolean {
    if (this.chunks.length === 0) {
      this.chunks.push([key]);
      this.packed.push(undefined);
      this.count = 1;
      this.version++;
      return true;
    }
    const ci = this.chunkFor(key);
    const chunk = this.unpack(ci);
    const i = lowerBound(chunk, key);
    if (i < chunk.length && chunk[i] === key) return false;
    // insert by shifting (Array#splice allocates its result array)
    let j = chunk.length;
    chunk.push(key);
    for (; j > i; j--) chunk[j] = chunk[j - 1] as string;
    chunk[i] = key;
    this.count++;
    this.version++;
    if (chunk.length > CHUNK * 2) {
      this.chunks.splice(ci + 1, 0, chunk.splice(CHUNK));
      this.packed.splice(ci + 1, 0, undefined);
    }
    return true;
  }

  /**
   * Adds many keys at once (a commit's writes): `keys` must be sorted ascending (duplicates allowed).
   * Each chunk that receives new keys is merged once, instead of shifting it once per key.
   */
  addSorted(keys: readonly string[]): void {
    if (keys.length === 0) return;
    if (keys.length < this.chunks.length) {
      // few keys for many chunks: one by one is cheaper than a pass over all chunks
      for (const k of keys) this.add(k);
      return;
    }
    if (this.chunks.length === 0) {
      this.appendSorted(keys.filter((k, i) => i === 0 || k !== keys[i - 1]));
      return;
    }
    const outChunks: string[][] = [];
    const outPacked: (PackedChunk | undefined)[] = [];
    let ki = 0;
    const nChunks = this.chunks.length;
    for (let ci = 0; ci < nChunks; ci++) {
      // the keys of this chunk: below the next chunk's first key (all the rest for the last chunk)
      const limit = ci + 1 < nChunks ? this.firstOf(ci + 1) : undefined;
      const start = ki;
      while (ki < keys.length && (limit === undefined || (keys[ki] as string) < limit)) ki++;
      if (start === ki) {
        outChunks.push(this.chunks[ci] as string[]);
        outPacked.push(this.packed[ci]);
        continue;
      }
      const chunk = this.unpack(ci);
      // only the keys not yet present; a chunk with none is kept as is
      const fresh: string[] = [];
      for (let j = start; j < ki; j++) {
        const k = keys[j] as string;
        if (j > start && k === keys[j - 1]) continue;
        const pos = lowerBound(chunk, k);
        if (pos < chunk.length && chunk[pos] === k) continue;
        fresh.push(k);
      }
      if (fresh.length === 0) {
        outChunks.push(chunk);
        outPacked.push(undefined);
        continue;
      }
      this.count += fresh.length;
      let merged: string[];
      if (fresh.length <= 4) {
        // a few keys: shift them into the chunk in place
        for (const k of fresh) {
          const pos = lowerBound(chunk, k);
          let j = chunk.length;
          chunk.push(k);
          for (; j > pos; j--) chunk[j] = chunk[j - 1] as string;
          chunk[pos] = k;
        }
        merged = chunk;
      } else {
        merged = [];
        let i = 0;
        for (const k of fresh) {
          while (i < chunk.length && (chunk[i] as string) < k) merged.push(chunk[i++] as string);
          merged.push(k);
        }
        while (i < chunk.length) merged.push(chunk[i++] as string);
      }
      if (merged.length <= CHUNK * 2) {
        outChunks.push(merged);
        outPacked.push(undefined);
      } else {
        for (let at = 0; at < merged.length; at += CHUNK) {
          outChunks.push(merged.slice(at, at + CHUNK));
          outPacked.push(undefined);
        }
      }
    }
    this.chunks = outChunks;
    this.packed = outPacked;
    this.version++;
  }

  /** Removes the key; returns true if it was present. */
  delete(key: string): boolean {
    if (this.count === 0) return false;
    const ci = this.chunkFor(key);
    const chunk = this.unpack(ci);
    const i = lowerBound(chunk, key);
    if (i >= chunk.length || chunk[i] !== key) return false;
    const n = chunk.length - 1;
    for (let j = i; j < n; j++) chunk[j] = chunk[j + 1] as string;
    chunk.pop();
    this.count--;
    this.version++;
    if (chunk.length === 0) {
      this.chunks.splice(ci, 1);
      this.packed.splice(ci, 1);
    }
    return true;
  }

  /**
   * Keys with from <= key <= to (either bound optional), ascending. Safe against writes made while
   * iterating: after a change the iterator re-finds its place after the last key it yielded.
   */
  *range(from?: string, to?: string): Generator<string, void, undefined> {
    if (this.count === 0) return;
    let ci = from === undefined ? 0 : this.chunkFor(from);
    let i = from === undefined ? 0 : lowerBound(this.unpack(ci), from);
    let seen = this.version;
    let lastYielded: string | undefined;
    for (;;) {
      if (seen !== this.version) {
        seen = this.version;
        if (this.count === 0) return;
        // re-find: the first key > the last yielded key
        const last = lastYielded as string;
        ci = this.chunkFor(last);
        const c = this.unpack(ci);
        i = lowerBound(c, last);
        if (i < c.length && c[i] === last) i++;
      }
      if (ci >= this.chunks.length) return;
      const chunk = this.unpack(ci);
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

  /** A private copy for a snapshot: unpacked chunks copied (references only), packed ones as is. */
  snapshotChunks(): ChunkSnapshot[] {
    return this.chunks.map((c, ci) => this.packed[ci] ?? c.slice());
  }

  /** The greatest key, if any. */
  last(): string | undefined {
    const ci = this.chunks.length - 1;
    if (ci < 0) return undefined;
    const chunk = this.unpack(ci);
    return chunk[chunk.length - 1];
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
