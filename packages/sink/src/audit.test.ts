import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readCommittedKcat, useKafka } from '@vltava/kafka-local/testing';
import { audit } from './audit.js';
import { DatabaseSink } from './databaseSink.js';
import { sqliteAdapter } from './sqlite.js';
import { journalDdl, produceCommands, toJournalRow, until } from './testing/fixture.js';

const kafka = useKafka(test);
const cli = fileURLToPath(new URL('./auditCli.js', import.meta.url));
const run = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--no-warnings', cli, '--brokers', kafka().brokers.join(','), ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
};

/** Input: commands with a `command-id` header. Output: one record per command id, written in transactions, planted faults optional. */
async function pipeline(opts: { drop?: number; double?: number; stranger?: boolean; upTo?: number } = {}): Promise<{ input: string; output: string; ids: string[]; inRecs: Awaited<ReturnType<typeof readCommittedKcat>> }> {
  const [input, output] = await kafka().createTopics([{ prefix: 'audit-in', partitions: 2 }, { prefix: 'audit-out', partitions: 3 }]);
  const ids = await produceCommands(kafka().client(), input!, 400, { abortEvery: 5 });
  // Until the last transaction's markers are written (commit() returns before).
  let inRecs: Awaited<ReturnType<typeof readCommittedKcat>> = [];
  await until(async () => (inRecs = await readCommittedKcat(kafka().brokers, input!)).length >= ids.length, () => `${inRecs.length} of ${ids.length}`);
  const producer = kafka().client().producer({ idempotent: true, maxInFlightRequests: 1, transactionalId: `${output}-w` });
  await producer.connect();
  const tx = await producer.transaction();
  const msgs = [];
  for (const [i, r] of inRecs.slice(0, opts.upTo ?? inRecs.length).entries()) {
    if (i === opts.drop) continue;
    const id = JSON.parse(r.text).id as string;
    msgs.push({ key: id, value: r.text, headers: { 'command-id': id } });
    if (i === opts.double) msgs.push({ key: id, value: r.text, headers: { 'command-id': id } });
  }
  if (opts.stranger) msgs.push({ key: 'nobody', value: '{}', headers: { 'command-id': 'cmd-from-nowhere' } });
  await tx.send({ topic: output!, messages: msgs });
  await tx.commit();
  // An aborted copy of everything: read_committed must not count it.
  const aborted = await producer.transaction();
  await aborted.send({ topic: output!, messages: msgs.slice(0, 50) });
  await aborted.abort();
  await producer.disconnect();
  return { input: input!, output: output!, ids, inRecs };
}

test('[broker] audit: a clean run passes (topic to topic, exit 0)', async (t) => {
  const { input, output, ids } = await pipeline();
  const r = await run(['--input', input, '--output', output, '--input-id', 'header:command-id']);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /audit: PASS/);
  const report = await audit({ brokers: kafka().brokers, input: { topic: input, id: { header: 'command-id' } }, output: { topic: output, id: 'key' } });
  t.true(report.ok);
  t.is(report.input.ids, ids.length);
  t.is(report.output.records, ids.length, 'the aborted copy is not counted');
});

test('[broker] audit: finds a planted duplicate, a planted loss and an unexpected id, with offsets (exit 1)', async (t) => {
  const { input, output, inRecs } = await pipeline({ drop: 17, double: 42, stranger: true });
  const lostId = JSON.parse(inRecs[17]!.text).id as string;
  const dupId = JSON.parse(inRecs[42]!.text).id as string;
  const report = await audit({ brokers: kafka().brokers, input: { topic: input, id: { jsonField: 'id' } }, output: { topic: output, id: { header: 'command-id' } } });
  t.false(report.ok);
  t.deepEqual(report.lost, [{ id: lostId, at: [`${inRecs[17]!.partition}@${inRecs[17]!.offset}`] }]);
  t.deepEqual(report.duplicated.map((d) => d.id), [dupId]);
  t.is(report.duplicated[0]!.at.length, 2);
  t.deepEqual(report.unexpected.map((d) => d.id), ['cmd-from-nowhere']);
  const r = await run(['--input', input, '--output', output, '--input-id', 'json:id', '--output-id', 'header:command-id']);
  t.is(r.code, 1);
  t.regex(r.stdout, new RegExp(`lost +1\\n  ${lostId}  input at ${inRecs[17]!.partition}@${inRecs[17]!.offset}`));
  t.regex(r.stdout, new RegExp(`duplicated +1\\n  ${dupId}  output at \\d@\\d+, \\d@\\d+`));
  t.regex(r.stdout, /audit: FAIL/);
});

test('[broker] audit: up to a watermark on a live system: ids past the processor\'s committed offsets are lag, not loss', async (t) => {
  // Output only for the first 100 inputs, as if the processor were still working on the rest.
  const { input, output, inRecs } = await pipeline({ upTo: 100 });
  const processed = new Map<number, number>();
  for (const r of inRecs.slice(0, 100)) processed.set(r.partition, Math.max(processed.get(r.partition) ?? 0, Number(r.offset) + 1));
  const group = kafka().uniqueName('audit-app');
  await kafka().admin.setOffsets({ groupId: group, topic: input, partitions: [0, 1].map((p) => ({ partition: p, offset: String(processed.get(p) ?? 0) })) });
  const live = await audit({ brokers: kafka().brokers, group, input: { topic: input, id: 'key' }, output: { topic: output, id: { header: 'command-id' } } }).catch(() => undefined);
  // Keys are accounts, not ids: an id source that does not match must not pass silently.
  t.false(live?.ok ?? true);
  const report = await audit({ brokers: kafka().brokers, group, input: { topic: input, id: { header: 'command-id' } }, output: { topic: output, id: { header: 'command-id' } } });
  t.true(report.ok, JSON.stringify(report.lost.slice(0, 3)));
  t.is(report.lag.pendingIds, inRecs.length - 100);
  t.true((report.lag.offsets ?? 0) >= inRecs.length - 100);
  const offline = await run(['--input', input, '--output', output, '--input-id', 'header:command-id']);
  t.is(offline.code, 1, 'without the group every missing id is lost');
});

test('[broker] audit: a sink table (SQLite) against its input; a deleted row and a doubled row are caught', async (t) => {
  const [input] = await kafka().createTopics([{ prefix: 'audit-sink-in', partitions: 2 }]);
  const ids = await produceCommands(kafka().client(), input!, 600, { abortEvery: 6 });
  const dir = mkdtempSync(path.join(tmpdir(), 'vltava-audit-'));
  const file = path.join(dir, 'sink.db');
  const db = sqliteAdapter({ path: file });
  await db.connect();
  await db.run(journalDdl('journal', 'transactional'));
  const sinkId = kafka().uniqueName('audit-sink');
  const sink = new DatabaseSink({ sinkId, brokers: kafka().brokers, topics: input!, mode: 'transactional', adapter: sqliteAdapter({ path: file }), table: 'journal', toRow: toJournalRow, consumer: { sessionTimeout: 6_000 } });
  try {
    await sink.start();
    await until(async () => Number((await db.all('SELECT COUNT(*) AS n FROM journal'))[0]!.n) >= ids.length, () => JSON.stringify(sink.stats));
    await sink.stop();
    const clean = await run(['--input', input!, '--input-id', 'header:command-id', '--table', 'journal', '--id-column', 'cmd_id', '--db', `sqlite:${file}`, '--sink-id', sinkId]);
    t.is(clean.code, 0, clean.stdout + clean.stderr);
    t.regex(clean.stdout, /lag 0 offsets|lag \d+ offsets, 0 ids pending/);
    await db.run("DELETE FROM journal WHERE cmd_id = (SELECT MIN(cmd_id) FROM journal)");
    await db.run('INSERT INTO journal SELECT * FROM journal WHERE rowid = (SELECT MAX(rowid) FROM journal)');
    const bad = await run(['--input', input!, '--input-id', 'header:command-id', '--table', 'journal', '--id-column', 'cmd_id', '--db', `sqlite:${file}`, '--sink-id', sinkId]);
    t.is(bad.code, 1, bad.stdout);
    t.regex(bad.stdout, /lost +1\n/);
    t.regex(bad.stdout, /duplicated +1\n/);
  } finally {
    await sink.stop();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
