import { ClassicLevel } from 'classic-level';
import { rm, mkdir } from 'node:fs/promises';
import type { DbOp, TaskDb } from './taskDb.js';

export interface LevelTaskDbOptions {
  /** fsync every commit batch (survives power loss, not only a process crash). Default false. */
  readonly syncWrites?: boolean;
}

/**
 * The LevelDB bytes store (classic-level): point reads with `getSync`, atomic batches for writes.
 * Range scans are served from each store's in-memory key index (classic-level iterators are async).
 */
export class LevelTaskDb implements TaskDb {
  readonly persistent = true;
  private closed = false;

  private constructor(
    readonly location: string,
    private readonly db: ClassicLevel<Buffer, Buffer>,
    private readonly sync: boolean,
  ) {}

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
    return { db: new LevelTaskDb(location, level, options.syncWrites ?? false), wiped };
  }

  /** Reused for the keys of point reads: getSync copies the key before it returns. */
  private scratch = Buffer.allocUnsafe(1024);

  get(prefix: string, key: string): Buffer | undefined {
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
    await batch.write({ sync: this.sync });
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
