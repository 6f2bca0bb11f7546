/**
 * The ledger all the way to the database: the ledger example (exactly-once on the broker) runs a
 * workload with resends and invalid commands; its balances go to SQLite (transactional upserts by
 * account) and its journal to PostgreSQL (transactional appends), each sink killed with kill -9
 * mid-transaction and restarted. The tables must equal the sequential reference model, and the
 * audit must find every journal entry exactly once in the table.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { awaitCaughtUp, useKafka } from '@vltava/kafka-local/testing';
import { createLedgerApp, referenceModel, Workload, type LedgerTopics } from '@vltava/example-ledger';
import { audit, endOffsets, readUpTo } from './audit.js';
import { postgresAdapter } from './postgres.js';
import { readOffsets, DEFAULT_OFFSETS_TABLE } from './sql.js';
import { sqliteAdapter } from './sqlite.js';
import { spawnSinkChild, until } from './testing/fixture.js';
import { startPostgres, type PostgresServer } from './testing/postgresServer.js';
import type { SinkAdapter } from './adapter.js';

const kafka = useKafka(test);
let pg: PostgresServer | undefined;
test.before(async () => {
  pg = await startPostgres();
});
test.after.always(async () => {
  await pg?.stop();
});
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function endsOf(topic: string): Promise<Map<number, number>> {
  // The last committed record's offset + 1 per partition (the sink stores that; the log end is one
  // further, past the commit marker). Read up to the high watermark, which waits for the last markers.
  const client = kafka().client();
  const { low, high } = await endOffsets(client, topic);
  const m = new Map<number, number>();
  for (const r of await readUpTo(client, topic, high, low)) m.set(r.partition, Math.max(m.get(r.partition) ?? 0, r.offset + 1));
  return m;
}

async function reached(db: SinkAdapter, sinkId: string, topic: string, ends: Map<number, number>): Promise<boolean> {
  const o = await readOffsets(db, db.dialect, DEFAULT_OFFSETS_TABLE, sinkId, topic).catch(() => new Map<number, number>());
  return [...ends].every(([p, e]) => (o.get(p) ?? 0) >= e);
}

test('[broker] the ledger into the database: balances to SQLite, journal to PostgreSQL, each sink killed mid-transaction; tables equal the reference model', async (t) => {
  const k = kafka();
  const partitions = 3;
  const [commands, balances, journal, rejections] = await k.createTopics(['lgs-commands', 'lgs-balances', 'lgs-journal', 'lgs-rejections'].map((prefix) => ({ prefix, partitions })));
  const topics: LedgerTopics = { commands: commands!, balances: balances!, journal: journal!, rejections: rejections! };
  const applicationId = k.uniqueName('lgs-app');
  const dir = mkdtempSync(path.join(tmpdir(), 'vltava-ledger-sink-'));
  const sqlitePath = path.join(dir, 'balances.db');
  const lite = sqliteAdapter({ path: sqlitePath });
  const post = postgresAdapter({ connectionString: pg!.url });
  await lite.connect();
  await post.connect();
  const journalTable = `ledger_journal_${process.pid}`;
  await lite.run('CREATE TABLE balances (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)');
  await post.run(`DROP TABLE IF EXISTS ${journalTable}`);
  await post.run(`CREATE TABLE ${journalTable} (entry_id TEXT NOT NULL, command_id TEXT NOT NULL, account TEXT NOT NULL, side TEXT NOT NULL, amount BIGINT NOT NULL, balance BIGINT NOT NULL, src_partition INTEGER NOT NULL, src_offset BIGINT NOT NULL)`);
  const app = createLedgerApp({ applicationId, brokers: k.brokers, topics, partitions, sessionTimeoutMs: 6_000, logger: quiet, stateDir: path.join(dir, 'state') });
  const balSink = { brokers: k.brokers, topic: topics.balances, sinkId: `${applicationId}-balances`, mode: 'transactional' as const, db: { kind: 'sqlite' as const, path: sqlitePath }, table: 'balances', maxBatchRecords: 40, preset: 'ledger-balances' as const };
  const jSink = { brokers: k.brokers, topic: topics.journal, sinkId: `${applicationId}-journal`, mode: 'transactional' as const, db: { kind: 'postgres' as const, url: pg!.url }, table: journalTable, maxBatchRecords: 40, preset: 'ledger-journal' as const };
  const children: ReturnType<typeof spawnSinkChild>[] = [];
  try {
    await app.start();
    // Both sinks start with the app and are killed at their 5th transaction: inside it (SQLite) and right after its COMMIT (PostgreSQL).
    const b1 = spawnSinkChild({ ...balSink, killAt: { step: 'after-rows', batch: 5 } });
    const j1 = spawnSinkChild({ ...jSink, killAt: { step: 'after-commit', batch: 5 } });
    children.push(b1, j1);
    const w = new Workload({ seed: 7, accounts: 12 });
    const records = w.batch(2_500);
    const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let i = 0; i < records.length; i += 250) {
      await producer.send({ topic: topics.commands, messages: records.slice(i, i + 250).map((r) => ({ key: r.key, value: r.value })) });
    }
    await producer.disconnect();
    t.is((await b1.exited)[1], 'SIGKILL');
    t.is((await j1.exited)[1], 'SIGKILL');
    const b2 = spawnSinkChild(balSink);
    const j2 = spawnSinkChild(jSink);
    children.push(b2, j2);
    await awaitCaughtUp(k.admin, applicationId, topics.commands, 90_000);
    await awaitCaughtUp(k.admin, applicationId, `${applicationId}-credits-repartition`, 90_000);
    await app.close();
    const [balEnds, jEnds] = await Promise.all([endsOf(topics.balances), endsOf(topics.journal)]);
    await until(async () => (await reached(lite, balSink.sinkId, topics.balances, balEnds)) && (await reached(post, jSink.sinkId, topics.journal, jEnds)), () => `balances sink: ${b2.lines.slice(-3).join(' | ')}; journal sink: ${j2.lines.slice(-3).join(' | ')}`, 90_000);

    const ref = referenceModel(records.map((r) => r.command));
    // Balances in SQLite = the reference model's.
    const rows = await lite.all('SELECT account, balance FROM balances');
    const sorted = (es: Iterable<[string, number]>): [string, number][] => [...es].sort((a, b) => a[0].localeCompare(b[0]));
    t.deepEqual(sorted(rows.map((r) => [String(r.account), Number(r.balance)])), sorted(ref.balances));
    // The journal in PostgreSQL: each accepted deposit one entry, each accepted transfer a debit and a credit, nothing else, nothing twice.
    const expected: string[] = [];
    for (const [id, c] of ref.accepted) {
      if (c.type === 'deposit') expected.push(`${id}:deposit`);
      else expected.push(`${id}:debit`, `${id}:credit`);
    }
    const got = (await post.all(`SELECT entry_id FROM ${journalTable}`)).map((r) => String(r.entry_id));
    t.is(got.length, expected.length);
    t.deepEqual(got.sort(), expected.sort());
    t.true(ref.resends > 0 && ref.rejected.size > 0, 'the workload had resends and rejections');
    // And the audit agrees: the journal topic against the PostgreSQL table.
    const report = await audit({
      brokers: k.brokers,
      input: { topic: topics.journal, id: (r) => { const e = JSON.parse(r.value!.toString()) as { commandId: string; side: string }; return `${e.commandId}:${e.side}`; } },
      output: { table: journalTable, adapter: post, idColumn: 'entry_id' },
      sinkId: jSink.sinkId,
    });
    t.true(report.ok, JSON.stringify({ lost: report.lost.slice(0, 3), duplicated: report.duplicated.slice(0, 3) }));
    t.is(report.lag.pendingIds, 0);
    t.log(`${records.length} commands (${ref.resends} resends, ${ref.rejected.size} rejected): ${ref.balances.size} balances in SQLite, ${got.length} journal rows in PostgreSQL`);
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await app.close();
    await lite.close();
    await post.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
