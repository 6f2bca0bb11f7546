/**
 * The PostgreSQL adapter, on the `pg` driver: one connection per sink, transactions at READ
 * COMMITTED (the offset row's UPDATE takes its row lock, which is all the fencing needs). A broken
 * connection (server restart, network cut, a killed backend) is replaced by {@link SinkAdapter.reconnect};
 * a transaction cut before its COMMIT reached the server is rolled back by the server, and one cut
 * while the COMMIT was in flight is resolved by the sink re-reading its offsets.
 */
import pg from 'pg';
import type { Dialect, SinkAdapter, SqlExecutor, SqlValue } from './adapter.js';

export interface PostgresAdapterOptions {
  /** `postgres://user:pass@host:port/db`; or give `config`. Defaults to `PGURL` / `DATABASE_URL`. */
  readonly connectionString?: string;
  /** Any other `pg.ClientConfig` (host, port, user, ssl, ...). */
  readonly config?: pg.ClientConfig;
  /** Client-side timeout of one statement (default 30 s): a stalled connection fails instead of hanging. */
  readonly queryTimeoutMs?: number;
  /** Timeout of opening a connection (default 10 s). */
  readonly connectTimeoutMs?: number;
}

const dialect: Dialect = { name: 'postgres', placeholder: (i) => `$${i}`, maxParams: 65_535 };

const toPg = (params: readonly SqlValue[]): unknown[] => params.map((v) => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v) : v));

class PostgresAdapter implements SinkAdapter {
  readonly dialect = dialect;
  private client: pg.Client | undefined;
  private broken: Error | undefined;

  constructor(private readonly opts: PostgresAdapterOptions) {}

  async connect(): Promise<void> {
    if (this.client !== undefined) return;
    const connectionString = this.opts.connectionString ?? process.env.PGURL ?? process.env.DATABASE_URL;
    const client = new pg.Client({
      ...(connectionString === undefined ? {} : { connectionString }),
      ...this.opts.config,
      query_timeout: this.opts.queryTimeoutMs ?? 30_000,
      connectionTimeoutMillis: this.opts.connectTimeoutMs ?? 10_000,
    });
    // A connection error arrives as an event too; without a listener it would crash the process.
    client.on('error', (e) => {
      this.broken = e;
    });
    this.broken = undefined;
    try {
      await client.connect();
    } catch (e) {
      await client.end().catch(() => undefined);
      throw e;
    }
    this.client = client;
  }

  private get c(): pg.Client {
    if (this.client === undefined) throw new Error('postgresAdapter: not connected (call connect() first)');
    if (this.broken !== undefined) throw this.broken;
    return this.client;
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<{ changes: number }> {
    const r = await this.c.query(sql, toPg(params));
    return { changes: r.rowCount ?? 0 };
  }

  async all(sql: string, params: readonly SqlValue[] = []): Promise<Record<string, unknown>[]> {
    return (await this.c.query(sql, toPg(params))).rows as Record<string, unknown>[];
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>, beforeCommit?: () => void | Promise<void>): Promise<T> {
    await this.connect();
    await this.c.query('BEGIN');
    try {
      const out = await fn(this);
      await beforeCommit?.();
      await this.c.query('COMMIT');
      return out;
    } catch (e) {
      // On a broken connection the server rolls back by itself.
      await this.client?.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }

  async reconnect(): Promise<void> {
    await this.close();
    await this.connect();
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c !== undefined) {
      // end() waits for the server's goodbye, which a cut connection never sends.
      await Promise.race([c.end().catch(() => undefined), new Promise((r) => setTimeout(r, 2_000).unref())]);
    }
  }
}

/** The PostgreSQL adapter: `postgresAdapter({ connectionString: 'postgres://...' })`. */
export function postgresAdapter(opts: PostgresAdapterOptions = {}): SinkAdapter {
  return new PostgresAdapter(opts);
}
