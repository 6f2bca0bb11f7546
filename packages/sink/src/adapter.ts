/**
 * What a database must offer the sink: transactions, and statements with positional parameters.
 * Two adapters ship: {@link sqliteAdapter} (node:sqlite, no server; `@vltava/sink/sqlite`) and
 * {@link postgresAdapter} (the `pg` driver; `@vltava/sink/postgres`).
 */

/** A value the sink binds as a statement parameter. Booleans become 1/0 on SQLite. */
export type SqlValue = string | number | bigint | boolean | null | Uint8Array;

/** One row to write: column name to value. */
export type Row = Readonly<Record<string, SqlValue>>;

export interface Dialect {
  readonly name: 'postgres' | 'sqlite';
  /** The placeholder of the i-th parameter (1-based): `$1` on PostgreSQL, `?` on SQLite. */
  placeholder(i: number): string;
  /** Largest number of parameters one statement may carry. */
  readonly maxParams: number;
}

/** Runs statements, inside a transaction or not. */
export interface SqlExecutor {
  /** A statement that changes rows; resolves with how many it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }>;
  /** A query; resolves with its rows. */
  all(sql: string, params?: readonly SqlValue[]): Promise<Record<string, unknown>[]>;
}

export interface SinkAdapter extends SqlExecutor {
  readonly dialect: Dialect;
  connect(): Promise<void>;
  /**
   * Runs `fn` in one database transaction and commits when it resolves (rolls back when it throws).
   * `beforeCommit` runs after `fn`, inside the transaction, just before COMMIT (the sink's
   * `after-rows` step).
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>, beforeCommit?: () => void | Promise<void>): Promise<T>;
  /**
   * After an error: drop the connection if it is broken and open a new one. The sink calls it and
   * then re-reads its offsets, which tells it whether an ambiguous COMMIT took effect.
   */
  reconnect(): Promise<void>;
  close(): Promise<void>;
}

/** Quotes an identifier (table or column): `"name"`, with embedded quotes doubled. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A table name that may carry a schema (`public.balances`): each part quoted. */
export function quoteTable(name: string): string {
  return name.split('.').map(quoteIdent).join('.');
}
