/**
 * `pnpm bench:sink`: the sink's throughput into SQLite and PostgreSQL, exactly-once on (both modes),
 * from a topic already full of committed records (read_committed). PostgreSQL is a throwaway server
 * with fsync ON (durable commits), or PGURL. Rows/s = records / (last commit - first commit); the
 * total includes joining the group. Writes its section of docs/benchmarks.md.
 *
 *   pnpm bench:sink [--records 100000] [--partitions 4] [--batch 500] [--no-doc]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { resolveBrokers } from '@vltava/kafka-local';
import { createTopicsAndWait } from '@vltava/kafka-local';
import { Kafka, logLevel } from 'kafkajs';
import type { SinkAdapter } from '../adapter.js';
import { DatabaseSink, type SinkMode } from '../databaseSink.js';
import { postgresAdapter } from '../postgres.js';
import { sqliteAdapter } from '../sqlite.js';
import { journalDdl, toJournalRow } from '../testing/fixture.js';
import { startPostgres } from '../testing/postgresServer.js';

const { values } = parseArgs({ options: { records: { type: 'string', default: '100000' }, partitions: { type: 'string', default: '4' }, batch: { type: 'string', default: '500' }, 'no-doc': { type: 'boolean', default: false } } });
const N = Number(values.records);
const load0 = loadavg()[0]!;
const PARTS = Number(values.partitions);
const BATCH = Number(values.batch);

const brokers = await resolveBrokers();
const kafka = new Kafka({ clientId: 'bench-sink', brokers: brokers.brokers, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
const topic = `bench-sink-${Date.now()}`;
await createTopicsAndWait(admin, [{ topic, numPartitions: PARTS, replicationFactor: 1 }]);

// The input: N commands in transactions of 1,000.
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, transactionalId: `${topic}-w` });
await producer.connect();
for (let i = 0; i < N; ) {
  const tx = await producer.transaction();
  const messages = [];
  for (let j = 0; j < 1_000 && i < N; j++, i++) {
    const c = { id: `cmd-${i}`, account: `acc-${i % 1000}`, amount: (i % 97) + 1 };
    messages.push({ key: c.account, value: JSON.stringify(c), headers: { 'command-id': c.id } });
  }
  await tx.send({ topic, messages });
  await tx.commit();
}
await producer.disconnect();
console.log(`input: ${N} records in ${PARTS} partitions of ${topic}`);

interface Result {
  readonly db: string;
  readonly mode: SinkMode;
  readonly rowsPerSec: number;
  readonly totalMs: number;
  readonly transactions: number;
}

async function measure(dbName: string, mode: SinkMode, adapter: () => SinkAdapter, table: string): Promise<Result> {
  const setup = adapter();
  await setup.connect();
  await setup.run(journalDdl(table, mode));
  await setup.close();
  let first = 0;
  let last = 0;
  let applied = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const t0 = Date.now();
  const sink = new DatabaseSink({
    sinkId: `${topic}-${dbName}-${mode}`,
    brokers: brokers.brokers,
    topics: topic,
    mode,
    adapter: adapter(),
    table,
    toRow: toJournalRow,
    ...(mode === 'idempotent' ? { id: { header: 'command-id' } as const } : {}),
    maxBatchRecords: BATCH,
    onEvent: (e) => {
      if (e.type !== 'committed') return;
      if (first === 0) first = Date.now();
      last = Date.now();
      applied += e.records;
      if (applied >= N) done();
    },
  });
  await sink.start();
  await finished;
  await sink.stop();
  const r = { db: dbName, mode, rowsPerSec: Math.round(N / ((last - first) / 1000)), totalMs: last - t0, transactions: sink.stats.transactions };
  console.log(`${dbName} ${mode}: ${r.rowsPerSec.toLocaleString('en-US')} rows/s (${r.transactions} transactions, ${r.totalMs} ms from start)`);
  return r;
}

const results: Result[] = [];
const dir = mkdtempSync(path.join(tmpdir(), 'vltava-bench-sink-'));
const pg = await startPostgres({ fsync: true });
try {
  for (const mode of ['transactional', 'idempotent'] as const) {
    const file = path.join(dir, `${mode}.db`);
    results.push(await measure('SQLite', mode, () => sqliteAdapter({ path: file }), 'journal'));
    results.push(await measure('PostgreSQL', mode, () => postgresAdapter({ connectionString: pg.url }), `journal_${mode}`));
  }
} finally {
  await pg.stop();
  rmSync(dir, { recursive: true, force: true });
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
  await brokers.release();
}

if (!values['no-doc']) {
  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const body = [
    '<!-- bench:sink:start -->',
    '### The database sink (@vltava/sink), exactly-once on',
    '',
    `Command: \`pnpm bench:sink\` · measured ${new Date().toISOString().slice(0, 10)} on ${machine}; broker ${brokers.source}; load average ${load0.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at the end (a shared machine: other builds and tests ran meanwhile)`,
    '',
    `${N.toLocaleString('en-US')} committed records (JSON commands, ${PARTS} partitions) already in the topic, read read_committed and written as one row each; at most ${BATCH} records per database transaction. SQLite: a WAL file, synchronous=NORMAL (\`sqliteAdapter\` default). PostgreSQL 15: a local server with fsync on (durable commits), one connection. Rows/s from the first to the last database commit.`,
    '',
    '| database | mode | rows/s | transactions | ms from start (group join included) |',
    '| --- | --- | ---: | ---: | ---: |',
    ...results.map((r) => `| ${r.db} | ${r.mode} | ${r.rowsPerSec.toLocaleString('en-US')} | ${r.transactions} | ${r.totalMs.toLocaleString('en-US')} |`),
    '',
    'Transactional: each transaction also does the check-and-advance UPDATE of its offset row; idempotent: versioned upserts, then a Kafka offset commit per transaction.',
    '<!-- bench:sink:end -->',
  ].join('\n');
  const doc = fileURLToPath(new URL('../../../../docs/benchmarks.md', import.meta.url));
  const text = readFileSync(doc, 'utf8');
  const re = /<!-- bench:sink:start -->[\s\S]*?<!-- bench:sink:end -->/;
  writeFileSync(doc, re.test(text) ? text.replace(re, body) : `${text.trimEnd()}\n\n${body}\n`);
  console.log(`recorded in ${doc}`);
}
