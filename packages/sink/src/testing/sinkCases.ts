/**
 * The sink's broker + database tests, registered once per database (sqliteSink.test.ts,
 * postgresSink.test.ts): every record applied once, a partition moving to another instance mid-batch
 * (fencing by offset), kill -9 before / inside / after the database commit, and the idempotent mode's
 * replay. The reference is the input read read_committed by kcat (librdkafka, no kafkajs code).
 */
import type { TestFn } from 'ava';
import { readCommittedKcat, type TestKafka } from '@vltava/kafka-local/testing';
import type { SinkAdapter } from '../adapter.js';
import { DatabaseSink, type SinkMode, type SinkStep } from '../databaseSink.js';
import { consistentWithOffsets, journalDdl, journalRows, produceCommands, refRows, spawnSinkChild, toJournalRow, until, type Command, type RefRecord } from './fixture.js';
import type { SinkChildConfig } from './sinkChild.js';

export interface TestDb {
  readonly name: 'sqlite' | 'postgres';
  /** A new (unconnected) adapter on the test database. */
  adapter(): SinkAdapter;
  /** How a child process reaches it. */
  readonly child: SinkChildConfig['db'];
}

/** Creates the input topic, writes `n` commands (some transactions aborted) and reads the reference with kcat. */
export async function input(kafka: TestKafka, n: number, partitions: number): Promise<{ topic: string; ref: RefRecord[]; committed: string[] }> {
  const [topic] = await kafka.createTopics([{ prefix: 'sink-in', partitions }]);
  const committed = await produceCommands(kafka.client(), topic!, n, { abortEvery: 7 });
  // commit() returns before the coordinator has written the commit markers, so a read_committed
  // read right after it can stop short of the last transaction: read until every committed record is there.
  let ref: RefRecord[] = [];
  await until(
    async () => {
      ref = (await readCommittedKcat(kafka.brokers, topic!)).map((r) => ({ id: (JSON.parse(r.text) as Command).id, partition: r.partition, offset: Number(r.offset) }));
      return ref.length >= committed.length;
    },
    () => `kcat read ${ref.length} of ${committed.length} committed records of ${topic}`,
  );
  return { topic: topic!, ref, committed };
}

const ends = (ref: readonly RefRecord[]): Map<number, number> => {
  const m = new Map<number, number>();
  for (const r of ref) m.set(r.partition, Math.max(m.get(r.partition) ?? 0, r.offset + 1));
  return m;
};

const reachedEnds = (offsets: ReadonlyMap<number, number>, ref: readonly RefRecord[]): boolean => [...ends(ref)].every(([p, end]) => (offsets.get(p) ?? 0) >= end);

export function registerSinkTests<C>(test: TestFn<C>, dbName: TestDb['name'], kafka: () => TestKafka, db: () => TestDb): void {

  let seq = 0;
  const table = (): string => `journal_${process.pid}_${++seq}_${Math.random().toString(36).slice(2, 7)}`;

  test(`[broker] sink → ${dbName}: transactional: every record once; a partition moved mid-batch is fenced by its offset row`, async (t) => {
    const { topic, ref, committed } = await input(kafka(), 2_000, 2);
    // The input, verified: kcat sees exactly the committed transactions' records.
    t.deepEqual(ref.map((r) => r.id).sort(), [...committed].sort());
    t.true(committed.length < 2_000, 'some input transactions were aborted');
    const tbl = table();
    const admin = db().adapter();
    await admin.connect();
    await admin.run(journalDdl(tbl, 'transactional'));
    const sinkId = kafka().uniqueName('sink');
    let releaseA!: () => void;
    const aHeld = new Promise<void>((r) => (releaseA = r));
    let aBlocked!: () => void;
    const aIsBlocked = new Promise<void>((r) => (aBlocked = r));
    const common = { sinkId, brokers: kafka().brokers, topics: topic, mode: 'transactional' as const, table: tbl, toRow: toJournalRow, maxBatchRecords: 100, consumer: { sessionTimeout: 6_000, heartbeatInterval: 500 } };
    // A stalls (like a zombie) before its 3rd transaction, with the expected offset already read.
    const a = new DatabaseSink({
      ...common,
      adapter: db().adapter(),
      hooks: {
        step: async (step, info) => {
          if (step === 'before-begin' && info.batch === 3) {
            aBlocked();
            await aHeld;
          }
        },
      },
    });
    const b = new DatabaseSink({ ...common, adapter: db().adapter() });
    try {
      await a.start();
      await aIsBlocked;
      // B joins; A's session expires, B gets every partition and applies everything from the stored offsets.
      await b.start();
      await until(
        async () => reachedEnds(await b.storedOffsets(topic), ref),
        async () => `stored ${JSON.stringify([...(await b.storedOffsets(topic))])}, ends ${JSON.stringify([...ends(ref)])}`,
      );
      t.true(b.stats.records > 0);
      releaseA();
      // A's stale transaction must find the offset row moved and roll back.
      await until(async () => a.stats.fenced > 0, () => `A not fenced: ${JSON.stringify(a.stats)}`);
      t.deepEqual(await journalRows(admin, tbl), refRows(ref));
      t.is(a.stats.records + b.stats.records, ref.length, 'each record committed by exactly one transaction');
      const c = await consistentWithOffsets(admin, tbl, sinkId, topic, ref);
      t.true(c.ok);
    } finally {
      releaseA();
      await Promise.all([a.stop(), b.stop()]);
      await admin.close();
    }
  });

  for (const step of ['before-begin', 'after-rows', 'after-commit'] as const satisfies readonly SinkStep[]) {
    test(`[broker] sink → ${dbName}: transactional: kill -9 at ${step}, restart: the table equals the reference`, async (t) => {
      await killAndRestart(t, 'transactional', step);
    });
  }

  test(`[broker] sink → ${dbName}: idempotent: kill -9 after the database commit, before the Kafka commit; the replay changes nothing`, async (t) => {
    await killAndRestart(t, 'idempotent', 'after-commit');
  });

  async function killAndRestart(t: import('ava').ExecutionContext<C>, mode: SinkMode, step: SinkStep): Promise<void> {
    const { topic, ref } = await input(kafka(), 1_200, 2);
    const tbl = table();
    const admin = db().adapter();
    await admin.connect();
    await admin.run(journalDdl(tbl, mode));
    const sinkId = kafka().uniqueName('sink');
    const base: SinkChildConfig = { brokers: kafka().brokers, topic, sinkId, mode, db: db().child, table: tbl, maxBatchRecords: 50 };
    try {
      const first = spawnSinkChild({ ...base, killAt: { step, batch: 4 } });
      const [, signal] = await first.exited;
      t.is(signal, 'SIGKILL', `the sink child died by SIGKILL; lines: ${first.lines.slice(-5).join(' | ')}`);
      const killing = first.lines.find((l) => l.startsWith('killing '));
      t.truthy(killing);
      const [, , p, range] = killing!.split(' ');
      const [lo, hi] = range!.split('-').map(Number) as [number, number];
      const killedRange = ref.filter((r) => r.partition === Number(p) && r.offset >= lo && r.offset < hi).map((r) => `${r.partition}:${r.offset}:${r.id}`);
      t.true(killedRange.length > 0);
      const rowsAtCrash = await journalRows(admin, tbl);
      const committedLines = first.lines.filter((l) => l.startsWith('committed ')).length;
      t.is(committedLines, step === 'after-commit' ? 4 : 3);
      const inTable = killedRange.filter((r) => rowsAtCrash.includes(r)).length;
      // The killed batch is all in the table (its commit happened) or not at all.
      t.is(inTable, step === 'after-commit' ? killedRange.length : 0, `killed batch ${killing}`);
      t.true(rowsAtCrash.length < ref.length);
      if (mode === 'transactional') {
        const c = await consistentWithOffsets(admin, tbl, sinkId, topic, ref);
        t.true(c.ok, `after the crash the table holds exactly the records below the stored offsets (${JSON.stringify([...c.offsets])}): ${c.rows.length} rows, ${c.expected.length} expected`);
      }
      // Transactional: a fresh consumer group proves the resume point comes from the database alone.
      const second = spawnSinkChild({ ...base, ...(mode === 'transactional' ? { groupId: `${sinkId}-restarted` } : {}) });
      try {
        const done = new Map<number, number>();
        await until(
          async () => {
            for (const l of second.lines) {
              const [w, part, next] = l.split(' ');
              if (w === 'committed') done.set(Number(part), Math.max(done.get(Number(part)) ?? 0, Number(next)));
            }
            if (second.lines.some((l) => l.startsWith('error '))) throw new Error(`sink child failed: ${second.lines.join(' | ')}`);
            const rows = await journalRows(admin, tbl);
            return rows.length >= ref.length && (mode === 'idempotent' || reachedEnds(await readOffsetsOf(admin, sinkId, topic), ref));
          },
          async () => `${(await journalRows(admin, tbl)).length} rows of ${ref.length}; child: ${second.lines.slice(-5).join(' | ')}`,
        );
        t.deepEqual(await journalRows(admin, tbl), refRows(ref));
      } finally {
        await second.stop();
      }
      // Nothing more arrives after the end (no late duplicate).
      t.deepEqual(await journalRows(admin, tbl), refRows(ref));
    } finally {
      await admin.close();
    }
  }

  async function readOffsetsOf(a: SinkAdapter, sinkId: string, topic: string): Promise<Map<number, number>> {
    const { readOffsets } = await import('../sql.js');
    return readOffsets(a, a.dialect, 'vltava_sink_offsets', sinkId, topic);
  }

  test(`[broker] sink → ${dbName}: idempotent: upserts keyed by a header id; a full replay by another sink changes no row`, async (t) => {
    const { topic, ref } = await input(kafka(), 1_500, 2);
    const tbl = table();
    const admin = db().adapter();
    await admin.connect();
    await admin.run(journalDdl(tbl, 'idempotent'));
    const run = async (sinkId: string): Promise<DatabaseSink> => {
      const done = new Map<number, number>();
      const sink = new DatabaseSink({
        sinkId,
        brokers: kafka().brokers,
        topics: topic,
        mode: 'idempotent',
        adapter: db().adapter(),
        table: tbl,
        id: { header: 'command-id' },
        toRow: toJournalRow,
        maxBatchRecords: 200,
        consumer: { sessionTimeout: 6_000, heartbeatInterval: 500 },
        onEvent: (e) => {
          if (e.type === 'committed') done.set(e.partition, e.nextOffset);
        },
      });
      await sink.start();
      try {
        await until(async () => reachedEnds(done, ref), () => `sink ${sinkId} at ${JSON.stringify([...done])}`);
      } finally {
        await sink.stop();
      }
      return sink;
    };
    try {
      const first = await run(kafka().uniqueName('sink'));
      t.is(first.stats.records, ref.length);
      t.is(first.stats.rows, ref.length);
      t.deepEqual(await journalRows(admin, tbl), refRows(ref));
      const replay = await run(kafka().uniqueName('sink-replay'));
      t.is(replay.stats.records, ref.length);
      t.is(replay.stats.rows, 0, 'every replayed row had an equal version: no row changed');
      t.deepEqual(await journalRows(admin, tbl), refRows(ref));
    } finally {
      await admin.close();
    }
  });

}
