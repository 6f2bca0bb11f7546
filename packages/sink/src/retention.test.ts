import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { useKafka } from '@vltava/kafka-local/testing';
import { DatabaseSink } from './databaseSink.js';
import { offsetsTableDdl } from './sql.js';
import { sqliteAdapter } from './sqlite.js';
import { journalDdl, produceCommands, toJournalRow } from './testing/fixture.js';

const kafka = useKafka(test);

test('[broker] sink: a stored offset below the log start (records deleted before they were applied) stops the sink, naming the range', async (t) => {
  const [topic] = await kafka().createTopics([{ prefix: 'sink-retention', partitions: 1 }]);
  await produceCommands(kafka().client(), topic!, 200);
  // Retention (here deleteRecords) removes offsets below 120; the database says the sink is at 50.
  // (Retried: right after the topic's creation the admin's metadata may be stale.)
  for (let attempt = 1; ; attempt++) {
    try {
      await kafka().admin.deleteTopicRecords({ topic: topic!, partitions: [{ partition: 0, offset: '120' }] });
      break;
    } catch (e) {
      if (attempt >= 5) throw e;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'vltava-sink-retention-'));
  const file = path.join(dir, 'sink.db');
  const db = sqliteAdapter({ path: file });
  await db.connect();
  await db.run(journalDdl('journal', 'transactional'));
  await db.run(offsetsTableDdl('vltava_sink_offsets'));
  const sinkId = kafka().uniqueName('sink-retention');
  await db.run('INSERT INTO vltava_sink_offsets (sink_id, topic, partition, next_offset) VALUES (?, ?, 0, 50)', [sinkId, topic!]);
  const sink = new DatabaseSink({ sinkId, brokers: kafka().brokers, topics: topic!, mode: 'transactional', adapter: sqliteAdapter({ path: file }), table: 'journal', toRow: toJournalRow, consumer: { sessionTimeout: 6_000 } });
  try {
    await sink.start();
    const e = await t.throwsAsync(sink.failure());
    t.regex(e!.message, /records 50\.\.119 were deleted before the sink applied them/);
    t.is(Number((await db.all('SELECT COUNT(*) AS n FROM journal'))[0]!.n), 0, 'nothing applied past the gap');
  } finally {
    await sink.stop();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
