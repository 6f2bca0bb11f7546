import test from 'ava';
import { useKafka } from '@vltava/kafka-local/testing';
import { DatabaseSink } from './databaseSink.js';
import { postgresAdapter } from './postgres.js';
import { DEFAULT_OFFSETS_TABLE, readOffsets } from './sql.js';
import { journalDdl, journalRows, refRows, toJournalRow, until } from './testing/fixture.js';
import { startPostgres, type PostgresServer } from './testing/postgresServer.js';
import { input, registerSinkTests, type TestDb } from './testing/sinkCases.js';
import { TcpProxy } from './testing/tcpProxy.js';

const kafka = useKafka(test);
let server: PostgresServer | undefined;
test.before(async () => {
  server = await startPostgres();
});
test.after.always(async () => {
  await server?.stop();
});
const db = (): TestDb => {
  if (server === undefined) throw new Error('the PostgreSQL test server did not start (see the before hook)');
  const url = server.url;
  return { name: 'postgres', adapter: () => postgresAdapter({ connectionString: url }), child: { kind: 'postgres', url } };
};

registerSinkTests(test, 'postgres', kafka, db);

test('[broker] sink → postgres: the database connection is cut inside a transaction and while its COMMIT is in flight: the table equals the reference', async (t) => {
  const { topic, ref } = await input(kafka(), 1_500, 2);
  const tbl = `journal_cut_${process.pid}`;
  const admin = db().adapter();
  await admin.connect();
  await admin.run(`DROP TABLE IF EXISTS ${tbl}`);
  await admin.run(journalDdl(tbl, 'transactional'));
  const proxy = await TcpProxy.start({ host: server!.host, port: server!.port });
  const sinkId = kafka().uniqueName('sink-cut');
  const faults: string[] = [];
  const fired = new Set<number>();
  const errors: string[] = [];
  const sink = new DatabaseSink({
    sinkId,
    brokers: kafka().brokers,
    topics: topic,
    mode: 'transactional',
    adapter: postgresAdapter({ connectionString: `postgres://postgres@127.0.0.1:${proxy.port}/postgres` }),
    table: tbl,
    toRow: toJournalRow,
    maxBatchRecords: 50,
    consumer: { sessionTimeout: 6_000, heartbeatInterval: 500 },
    onEvent: (e) => {
      if (e.type === 'db-error') errors.push(e.error.message);
    },
    hooks: {
      step: (step, info) => {
        // Each fault once (a retried batch passes this step again with the same number).
        if (step !== 'after-rows' || fired.has(info.batch)) return;
        fired.add(info.batch);
        // Rows and offset written, COMMIT not sent: the server must roll the transaction back.
        if (info.batch === 3) faults.push(`cut ${proxy.cutAll()} before COMMIT`);
        // The COMMIT reaches the server, its answer never reaches the sink: an ambiguous commit that
        // the sink resolves by re-reading its offset row.
        if (info.batch === 8 || info.batch === 14) {
          proxy.cutAfterNextClientWrite();
          faults.push('cut after COMMIT sent');
        }
      },
    },
  });
  try {
    await sink.start();
    // Wait until every partition's offset row reached its end.
    const ends = new Map<number, number>();
    for (const r of ref) ends.set(r.partition, Math.max(ends.get(r.partition) ?? 0, r.offset + 1));
    // (Read through our own connection: the sink's goes through the proxy and is being cut.)
    const stored = (): Promise<Map<number, number>> => readOffsets(admin, admin.dialect, DEFAULT_OFFSETS_TABLE, sinkId, topic);
    await until(async () => {
      const o = await stored();
      return [...ends].every(([p, e]) => (o.get(p) ?? 0) >= e);
    }, async () => `${JSON.stringify([...(await stored())])}; ${JSON.stringify(sink.stats)}`);
    t.is(faults.length, 3, faults.join(', '));
    t.true(proxy.cuts >= 3, `connections cut: ${proxy.cuts}`);
    t.true(sink.stats.dbErrors >= 3, `database errors seen and retried: ${errors.join(' | ')}`);
    t.deepEqual(await journalRows(admin, tbl), refRows(ref));
    t.log(`faults: ${faults.join(', ')}; stats ${JSON.stringify(sink.stats)}`);
  } finally {
    await sink.stop();
    await proxy.close();
    await admin.close();
  }
});
