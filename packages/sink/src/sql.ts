/** The statements the sink writes, for both dialects (INSERT ... ON CONFLICT is common to both). */
import { quoteIdent, quoteTable, type Dialect, type Row, type SqlExecutor, type SqlValue } from './adapter.js';

export interface WriteSpec {
  readonly table: string;
  readonly keyColumns: readonly string[];
  /** Upsert only: a row is replaced only by one with a greater version. */
  readonly versionColumn?: string | undefined;
}

/** Splits rows into statements that stay under the dialect's parameter limit (and 1,000 rows). */
function chunks<T>(items: readonly T[], perItem: number, dialect: Dialect): T[][] {
  const size = Math.max(1, Math.min(1_000, Math.floor(dialect.maxParams / Math.max(1, perItem))));
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function columnsOf(rows: readonly Row[]): string[] {
  const cols = new Set<string>();
  for (const r of rows) for (const c of Object.keys(r)) cols.add(c);
  return [...cols];
}

function valuesClause(rows: readonly Row[], cols: readonly string[], dialect: Dialect, params: SqlValue[]): string {
  return rows
    .map((r) => `(${cols.map((c) => {
      params.push(r[c] ?? null);
      return dialect.placeholder(params.length);
    }).join(', ')})`)
    .join(', ');
}

/** Plain INSERT of every row (Kafka Connect's `insert.mode=insert`). Returns rows written. */
export async function insertRows(ex: SqlExecutor, dialect: Dialect, table: string, rows: readonly Row[]): Promise<number> {
  if (rows.length === 0) return 0;
  const cols = columnsOf(rows);
  let n = 0;
  for (const part of chunks(rows, cols.length, dialect)) {
    const params: SqlValue[] = [];
    const sql = `INSERT INTO ${quoteTable(table)} (${cols.map(quoteIdent).join(', ')}) VALUES ${valuesClause(part, cols, dialect, params)}`;
    n += (await ex.run(sql, params)).changes;
  }
  return n;
}

/**
 * INSERT ... ON CONFLICT (key) DO UPDATE (`insert.mode=upsert`). With a version column the update
 * happens only when the new row's version is greater: replays and reordered duplicates never move a
 * row back. Rows must have distinct keys (the sink keeps the last one per key). Returns rows changed.
 */
export async function upsertRows(ex: SqlExecutor, dialect: Dialect, spec: WriteSpec, rows: readonly Row[]): Promise<number> {
  if (rows.length === 0) return 0;
  const cols = columnsOf(rows);
  for (const k of spec.keyColumns) if (!cols.includes(k)) throw new Error(`sink: the rows for ${spec.table} have no key column "${k}"`);
  const updates = cols.filter((c) => !spec.keyColumns.includes(c));
  const t = quoteTable(spec.table);
  const conflict = `ON CONFLICT (${spec.keyColumns.map(quoteIdent).join(', ')})`;
  const action =
    updates.length === 0
      ? 'DO NOTHING'
      : `DO UPDATE SET ${updates.map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`).join(', ')}` +
        (spec.versionColumn === undefined ? '' : ` WHERE ${t}.${quoteIdent(spec.versionColumn)} < excluded.${quoteIdent(spec.versionColumn)}`);
  let n = 0;
  for (const part of chunks(rows, cols.length, dialect)) {
    const params: SqlValue[] = [];
    const sql = `INSERT INTO ${t} (${cols.map(quoteIdent).join(', ')}) VALUES ${valuesClause(part, cols, dialect, params)} ${conflict} ${action}`;
    n += (await ex.run(sql, params)).changes;
  }
  return n;
}

/** DELETE by key (`delete.enabled`), for tombstones. Returns rows deleted. */
export async function deleteRows(ex: SqlExecutor, dialect: Dialect, spec: WriteSpec, keys: readonly Row[]): Promise<number> {
  let n = 0;
  for (const part of chunks(keys, spec.keyColumns.length, dialect)) {
    const params: SqlValue[] = [];
    const where = part
      .map((k) => `(${spec.keyColumns.map((c) => {
        params.push(k[c] ?? null);
        return `${quoteIdent(c)} = ${dialect.placeholder(params.length)}`;
      }).join(' AND ')})`)
      .join(' OR ');
    n += (await ex.run(`DELETE FROM ${quoteTable(spec.table)} WHERE ${where}`, params)).changes;
  }
  return n;
}

// --- the offsets table ----------------------------------------------------------------------------

export const DEFAULT_OFFSETS_TABLE = 'vltava_sink_offsets';

export function offsetsTableDdl(table: string): string {
  return (
    `CREATE TABLE IF NOT EXISTS ${quoteTable(table)} (` +
    'sink_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset BIGINT NOT NULL, ' +
    'PRIMARY KEY (sink_id, topic, partition))'
  );
}

/** The next offset to apply, per partition of `topic`, as stored by sink `sinkId`. */
export async function readOffsets(ex: SqlExecutor, dialect: Dialect, table: string, sinkId: string, topic: string): Promise<Map<number, number>> {
  const rows = await ex.all(`SELECT partition, next_offset FROM ${quoteTable(table)} WHERE sink_id = ${dialect.placeholder(1)} AND topic = ${dialect.placeholder(2)}`, [sinkId, topic]);
  return new Map(rows.map((r) => [Number(r.partition), Number(r.next_offset)]));
}

/**
 * Check-and-advance: moves the partition's offset from `expected` (undefined: no row yet) to `next`,
 * and reports whether it did. False means another sink instance (or an earlier life of this one)
 * advanced it first: the caller must roll back the whole transaction. On PostgreSQL the UPDATE takes
 * the row lock, so two transactions of one partition serialise and the second one finds 0 rows.
 */
export async function advanceOffset(ex: SqlExecutor, dialect: Dialect, table: string, sinkId: string, topic: string, partition: number, expected: number | undefined, next: number): Promise<boolean> {
  const p = (i: number): string => dialect.placeholder(i);
  const t = quoteTable(table);
  const r =
    expected === undefined
      ? await ex.run(`INSERT INTO ${t} (sink_id, topic, partition, next_offset) VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}) ON CONFLICT (sink_id, topic, partition) DO NOTHING`, [sinkId, topic, partition, next])
      : await ex.run(`UPDATE ${t} SET next_offset = ${p(1)} WHERE sink_id = ${p(2)} AND topic = ${p(3)} AND partition = ${p(4)} AND next_offset = ${p(5)}`, [next, sinkId, topic, partition, expected]);
  return r.changes === 1;
}
