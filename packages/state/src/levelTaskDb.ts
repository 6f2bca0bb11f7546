import { ClassicLevel } from 'classic-level';
import { rm, mkdir } from 'node:fs/promises';
import type { DbOp, TaskDb } from './taskDb.js';

export interface LevelTaskDbOptions {
  /** fsync every commit batch (survives power loss, not only a process crash). Default false. */
  readonly syncWrites?: boolean;
  /**
   * Bytes of committed values (and of keys known to be absent) kept in memory after a read or a
   * write, so that hot keys are not read from LevelDB again after every commit (Kafka Streams' record
   * cache keeps clean entries the same way). 0 (default) disables it.
   */
  readonly readCacheBytes?: number;
}

/** What one read-cache entry costs besides its key and value bytes (Map slot, strings, Buffer view). */
const READ_CACHE_ENTRY_BYTES = 100;

/**
 * The LevelDB bytes store (classic-level): point reads with `getSync`, atomic batches for writes.
 * Range scans are served from each store's in-memory key index (classic-level iterators are async).
 */
export class LevelTaskDb implements TaskDb {
  readonly persistent = true;
  private closed = false;

  /**
   * The read cache: per store prefix, key -> committed value (null: absent). It only ever holds what
   * LevelDB holds: filled by reads, and updated by `write` once its batch is in the database. When it
   * outgrows its budget it is dropped whole (hot keys come back on their next read).
   */
  private readonly cache: Map<string, Map<string, Buffer | null>> | undefined;
  private cachedBytes = 0;

  private constructor(
    readonly location: string,
    private readonly db: ClassicLevel<Buffer, Buffer>,
    private readonly sync: boolean,
    private readonly readCacheBytes: number,
  ) {
    this.cache = readCacheBytes > 0 ? new Map() : undefined;
  }

  /**
   * Opens (creating if missing) the database at `location`. If it cannot be opened because it is
   * corrupt, it is wiped and recreated empty, and `wiped` is true: the caller must restore fully.
   */
  static async open(location: string, options: LevelTaskDbOptions = {}): Promise<{ db: LevelTaskDb; wiped: boolean }> {
    await mkdir(location, { recursive: true });
    const create = () =>
      new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: true });
    let level = create();
    let wiped = false;
    try {
      await level.open();
    } catch (err) {
      if (!isCorruption(err)) throw err;
      wiped = true;
      await rm(location, { recursive: true, force: true });
      await mkdir(location, { recursive: true });
      level = create();
      await level.open();
    }
    return { db: new LevelTaskDb(location, level, options.syncWrites ?? false, Math.max(0, options.readCacheBytes ?? 0)), wiped };
  }

  /** Reused for the keys of point reads: getSync copies the key before it returns. */
  private scratch = Buffer.allocUnsafe(1024);

  get(prefix: string, key: string): Buffer | undefined {
    const cache = this.cache;
    if (cache === undefined) return this.read(prefix, key);
    let m = cache.get(prefix);
    if (m === undefined) cache.set(prefix, (m = new Map()));
    return this.cachedRead(m, prefix, key);
  }

  /** A point reader bound to one prefix: the prefix's cache map is looked up once. */
  reader(prefix: string): (key: string) => Buffer | undefined {
    const cache = this.cache;
    if (cache === undefined) return (key) => this.read(prefix, key);
    // The prefix's map is only ever cleared, never replaced: bind it once.
    let m = cache.get(prefix);
    if (m === undefined) cache.set(prefix, (m = new Map()));
    const map = m;
    return (key) => this.cachedRead(map, prefix, key);
  }

  private cachedRead(m: Map<string, Buffer | null>, prefix: string, key: string): Buffer | undefined {
    const hit = m.get(key);
    if (hit !== undefined) return hit === null ? undefined : hit;
    const v = this.read(prefix, key);
    this.remember(m, key, v ?? null);
    return v;
  }

  private remember(m: Map<string, Buffer | null>, key: string, value: Buffer | null): void {
    const old = m.get(key);
    if (old === undefined) this.cachedBytes += READ_CACHE_ENTRY_BYTES + key.length + (value?.length ?? 0);
    else this.cachedBytes += (value?.length ?? 0) - (old?.length ?? 0);
    m.set(key, value);
    if (this.cachedBytes > this.readCacheBytes) {
      for (const x of this.cache!.values()) x.clear();
      this.cachedBytes = 0;
    }
  }

  private read(prefix: string, key: string): Buffer | undefined {
    const len = prefix.length + key.length;
    if (len > this.scratch.length) this.scratch = Buffer.allocUnsafe(len * 2);
    this.scratch.write(prefix, 0, 'latin1');
    this.scratch.write(key, prefix.length, 'latin1');
    return this.db.getSync(this.scratch.subarray(0, len));
  }

  async write(ops: readonly DbOp[]): Promise<void> {
    if (ops.length === 0) return;
    const batch = this.db.batch();
    for (const op of ops) {
      const k = Buffer.allocUnsafe(op.prefix.length + op.key.length);
      k.write(op.prefix, 0, 'latin1');
      k.write(op.key, op.prefix.length, 'latin1');
      if (op.value === null) batch.del(k);
      else batch.put(k, op.value);
    }
    const cache = this.cache;
    if (cache === undefined) {
      await batch.write({ sync: this.sync });
      return;
    }
    try {
      await batch.write({ sync: this.sync });
    } catch (err) {
      // Atomic: nothing was written. Dropped anyway, so a cache can never be ahead of or beside the database.
      for (const x of cache.values()) x.clear();
      this.cachedBytes = 0;
      throw err;
    }
    // In the database now: the cache follows (write-through, so a key just written stays hot). A
    // written value is often a slice of a shared 8 KiB pool slab (Buffer.allocUnsafe, the serdes'
    // pools): the cache keeps its own copy, or each entry would pin a whole slab.
    for (const op of ops) {
      let m = cache.get(op.prefix);
      if (m === undefined) cache.set(op.prefix, (m = new Map()));
      this.remember(m, op.key, op.value === null ? null : ownCopy(op.value));
    }
  }

  /** Bytes held by the read cache (for tests and memory accounting). */
  get readCacheSize(): number {
    return this.cachedBytes;
  }

  async loadKeys(prefix: string, onKeys: (keys: string[]) => void): Promise<void> {
    const gte = Buffer.from(prefix, 'latin1');
    const it = this.db.keys({ gte, lt: prefixEnd(gte) });
    try {
      for (;;) {
        const batch = await it.nextv(4096);
        if (batch.length === 0) break;
        const keys = new Array<string>(batch.length);
        for (let i = 0; i < batch.length; i++) keys[i] = (batch[i] as Buffer).toString('latin1', gte.length);
        onKeys(keys);
      }
    } finally {
      await it.close();
    }
  }

  async hasKeys(prefix: string): Promise<boolean> {
    const gte = Buffer.from(prefix, 'latin1');
    const keys = await this.db.keys({ gte, lt: prefixEnd(gte), limit: 1 }).all();
    return keys.length > 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.close();
  }
}

/** `b` itself if it owns its memory, else a copy that does (never from the shared pool). */
function ownCopy(b: Buffer): Buffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) return b;
  const own = Buffer.allocUnsafeSlow(b.length);
  b.copy(own);
  return own;
}

/** The smallest key greater than every key starting with `prefix`. */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.alloc(0);
}

function isCorruption(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = (e as { cause?: unknown }).cause) {
    if ((e as { code?: string }).code === 'LEVEL_CORRUPTION' || /corrupt/i.test(e.message)) return true;
  }
  return false;
}
