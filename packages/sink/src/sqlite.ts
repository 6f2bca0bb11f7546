/**
 * The SQLite adapter, on Node's built-in `node:sqlite` (Node >= 22.13; no native module to build, no
 * server). The database is a file shared by every sink process on the machine: transactions are
 * `BEGIN IMMEDIATE` (the write lock is taken at BEGIN, so two sinks serialise) with a busy timeout, in
 * WAL mode. A process killed inside a transaction leaves it uncommitted; SQLite rolls it back when the
 * file is next opened.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { Dialect, SinkAdapter, SqlExecutor, SqlValue } from './adapter.js';

export interface SqliteAdapterOptions {
  /** Path of the database file (created if missing), or ':memory:' for one process. */
  readonly path: string;
  /** How long a statement waits for another connection's lock (default 30 s). */
  readonly busyTimeoutMs?: number;
  /**
   * `PRAGMA synchronous` (default 'NORMAL'). In WAL mode NORMAL never corrupts and never splits a
   * transaction; after a power loss the last commits may be gone, rows and offsets together, so the
   * sink resumes from an earlier offset and exactly-once still holds. 'FULL' makes each commit durable.
   */
  readonly synchronous?: 'OFF' | 'NORMAL' | 'FULL';
}

const dialect: Dialect = { name: 'sqlite', placeholder: () => '?', maxParams: 32_766 };

type Bindable = null | number | bigint | string | Uint8Array;
const bind = (params: readonly SqlValue[]): Bindable[] => params.map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v));

class SqliteAdapter implements SinkAdapter {
  readonly dialect = dialect;
  private db: DatabaseSync | undefined;
  private readonly statements = new Map<string, StatementSync>();
  private inTx = false;

  constructor(private readonly opts: SqliteAdapterOptions) {}

  async connect(): Promise<void> {
    if (this.db !== undefined) return;
    const db = new DatabaseSync(this.opts.path, { timeout: this.opts.busyTimeoutMs ?? 30_000 });
    db.exec('PRAGMA journal_mode = WAL');
    db.exec(`PRAGMA synchronous = ${this.opts.synchronous ?? 'NORMAL'}`);
    this.db = db;
  }

  private stmt(sql: string): StatementSync {
    if (this.db === undefined) throw new Error('sqliteAdapter: not connected (call connect() first)');
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      if (this.statements.size > 200) this.statements.clear();
      this.statements.set(sql, s);
    }
    return s;
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<{ changes: number }> {
    const r = this.stmt(sql).run(...bind(params));
    return { changes: Number(r.changes) };
  }

  async all(sql: string, params: readonly SqlValue[] = []): Promise<Record<string, unknown>[]> {
    return this.stmt(sql).all(...bind(params)) as Record<string, unknown>[];
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>, beforeCommit?: () => void | Promise<void>): Promise<T> {
    if (this.inTx) throw new Error('sqliteAdapter: nested transaction');
    await this.connect();
    this.inTx = true;
    try {
      this.db!.exec('BEGIN IMMEDIATE');
      try {
        const out = await fn(this);
        await beforeCommit?.();
        this.db!.exec('COMMIT');
        return out;
      } catch (e) {
        if (this.db!.isTransaction) this.db!.exec('ROLLBACK');
        throw e;
      }
    } finally {
      this.inTx = false;
    }
  }

  async reconnect(): Promise<void> {
    await this.close();
    await this.connect();
  }

  async close(): Promise<void> {
    this.statements.clear();
    this.db?.close();
    this.db = undefined;
  }
}

/** The SQLite adapter: `sqliteAdapter({ path: 'sink.db' })`. */
export function sqliteAdapter(opts: SqliteAdapterOptions): SinkAdapter {
  return new SqliteAdapter(opts);
}
