/**
 * `vltava reset` and `vltava topics` against a real broker, run as the compiled bin in a child
 * process: a word-count app runs, is closed, is reset, and runs again from scratch with the same
 * result (verified with kcat, a client that shares no code with kafkajs); a dry run changes nothing;
 * a reset is refused while the app is a member of its group.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { Admin } from 'kafkajs';
import { awaitCaughtUp, committedOffsets, readCommittedKcat, useKafka, type TestKafka } from '@vltava/kafka-local/testing';
import { KafkaStreams } from '@vltava/runtime';
import { wordCountTopology } from './fixtures/wordCountTopology.js';
import { vltava } from './testing.test.helper.js';
import type { TopicsReport } from './topics.js';

const kafka = useKafka(test);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

function corpus(lines: number): string[] {
  let s = 7;
  const rnd = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  return Array.from({ length: lines }, () => Array.from({ length: 1 + Math.floor(rnd() * 6) }, () => `w${Math.floor(rnd() ** 2 * 60)}`).join(' '));
}

function reference(lines: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of lines) for (const w of l.split(' ')) m.set(w, (m.get(w) ?? 0) + 1);
  return m;
}

/** The last count per word of a stream of count updates. */
function finalCounts(records: readonly { key: Buffer | null; value: Buffer | null }[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of records) if (r.key !== null && r.value !== null) m.set(r.key.toString(), Number(r.value.readBigInt64BE(0)));
  return m;
}

const sorted = (m: Map<string, number>): [string, number][] => [...m].sort(([a], [b]) => (a < b ? -1 : 1));

async function produce(k: TestKafka, topic: string, lines: readonly string[]): Promise<void> {
  const p = k.client().producer();
  await p.connect();
  await p.send({ topic, messages: lines.map((value, i) => ({ key: `line-${i}`, value })) });
  await p.disconnect();
}

/**
 * A kafkajs admin of the test's own. kafkajs refreshes the metadata of every topic an admin ever
 * asked about, and fails once one of them is deleted: the reset deletes topics, and so do the
 * other test's teardowns, so the shared harness admin is not used after that.
 */
async function ownAdmin(t: { teardown(fn: () => unknown): void }, k: TestKafka): Promise<Admin> {
  const admin = k.client().admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  return admin;
}

async function runToEnd(k: TestKafka, admin: Admin, appId: string, input: string, output: string, stateDir: string): Promise<KafkaStreams> {
  const app = new KafkaStreams(wordCountTopology(input, output), { applicationId: appId, brokers: k.brokers, stateDir, sessionTimeoutMs: 6_000, logger: quiet });
  await app.start();
  await awaitCaughtUp(admin, appId, input, 90_000);
  await awaitCaughtUp(admin, appId, `${appId}-counts-repartition`, 90_000);
  return app;
}

const offsetsOf = async (admin: Admin, appId: string, topic: string): Promise<number[]> => [...(await committedOffsets(admin, appId, topic))].sort(([a], [b]) => a - b).map(([, o]) => o);

test('[broker] reset: a dry run changes nothing; the reset makes the app reprocess from scratch with the same output (kcat)', async (t) => {
  t.timeout(240_000);
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'cli-in', partitions: 2 }, { prefix: 'cli-out' }]);
  const appId = k.uniqueName('cli-reset');
  const internal = [`${appId}-counts-changelog`, `${appId}-counts-repartition`];
  t.teardown(() => k.admin.deleteTopics({ topics: internal }).catch(() => undefined));
  const stateDir = mkdtempSync(join(tmpdir(), 'vltava-cli-reset-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const lines = corpus(400);
  const expected = sorted(reference(lines));
  await produce(k, input!, lines);

  let admin = await ownAdmin(t, k);
  const first = await runToEnd(k, admin, appId, input!, output!, stateDir);
  await first.close();
  const run1 = await readCommittedKcat(k.brokers, output!);
  t.deepEqual(sorted(finalCounts(run1)), expected, 'first run: the reference counts');

  // the local store, read back with the CLI: one entry per word over the two tasks of sub-topology 1
  const words = new Set<string>();
  for (const task of ['1_0', '1_1']) {
    const r = await vltava(['store', 'inspect', stateDir, appId, task, 'counts', '--json']);
    t.is(r.code, 0, r.stderr);
    for (const l of r.stdout.trim().split('\n').filter(Boolean)) words.add((JSON.parse(l) as { key: string }).key);
  }
  t.deepEqual([...words].sort(), expected.map(([w]) => w));

  // another application whose id extends this one: its internal topic matches the pattern, but it is kept
  const otherApp = `${appId}-other`;
  const otherTopic = `${otherApp}-sums-changelog`;
  await admin.createTopics({ topics: [{ topic: otherTopic, numPartitions: 1 }], waitForLeaders: true });
  t.teardown(() => k.admin.deleteTopics({ topics: [otherTopic] }).catch(() => undefined));
  await admin.setOffsets({ groupId: otherApp, topic: input!, partitions: [{ partition: 0, offset: '0' }] });
  t.teardown(() => k.admin.deleteGroups([otherApp]).catch(() => undefined));

  const base = ['reset', '--application-id', appId, '--brokers', k.brokers.join(','), '--input-topics', input!, '--state-dir', stateDir];
  const before = await offsetsOf(admin, appId, input!);
  t.is(before.reduce((a, b) => a + b, 0), lines.length, 'the group committed the whole input');
  const dry = await vltava([...base, '--dry-run']);
  t.is(dry.code, 0, dry.stderr);
  for (const [p, o] of before.entries()) t.regex(dry.stdout, new RegExp(`\\[dry-run\\] would set ${input} partition ${p}: ${o} -> 0\\n`));
  for (const topic of internal) t.regex(dry.stdout, new RegExp(`\\[dry-run\\] would delete ${topic}\\n`));
  t.regex(dry.stdout, new RegExp(`Local state: \\[dry-run\\] would delete ${join(stateDir, appId)}`));
  t.regex(dry.stdout, /Dry run: nothing was changed\./);
  t.regex(dry.stdout, new RegExp(`keep ${otherTopic}: it belongs to another application`));
  t.notRegex(dry.stdout, new RegExp(`delete ${otherTopic}`));
  t.deepEqual(await offsetsOf(admin, appId, input!), before, 'dry run: offsets unchanged');
  const topicsAfterDry = new Set(await admin.listTopics());
  t.true(internal.every((x) => topicsAfterDry.has(x)), 'dry run: internal topics still there');
  t.true(existsSync(join(stateDir, appId, '1_0')), 'dry run: local state still there');

  const done = await vltava(base);
  t.is(done.code, 0, done.stderr);
  t.regex(done.stdout, /Reset done: 2 partition offset\(s\) reset, 2 internal topic\(s\) deleted\./);
  admin = await ownAdmin(t, k);
  t.deepEqual(await offsetsOf(admin, appId, input!), [0, 0], 'input offsets at the start');
  const topicsAfter = new Set(await admin.listTopics());
  t.deepEqual(internal.filter((x) => topicsAfter.has(x)), [], 'internal topics deleted');
  t.true(topicsAfter.has(otherTopic), "the other application's topic is kept");
  t.deepEqual(
    (await admin.fetchOffsets({ groupId: appId })).map((o) => o.topic).filter((x) => internal.includes(x)),
    [],
    'no committed offsets of the deleted internal topics are left in the group',
  );
  t.false(existsSync(join(stateDir, appId)), 'local state deleted');

  const second = await runToEnd(k, admin, appId, input!, output!, stateDir);
  await second.close();
  const all = await readCommittedKcat(k.brokers, output!);
  const run2 = all.slice(run1.length);
  t.true(run2.length > 0, 'the second run reprocessed the input');
  t.deepEqual(sorted(finalCounts(run2)), expected, 'second run, from scratch: the same counts, not doubled');
  t.deepEqual(sorted(finalCounts(all)), expected);
});

test('[broker] topics shows internal topics, configs, end offsets and lag; reset is refused while the app runs', async (t) => {
  t.timeout(180_000);
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'cli-tin', partitions: 2 }, { prefix: 'cli-tout' }]);
  const appId = k.uniqueName('cli-topics');
  const internal = [`${appId}-counts-changelog`, `${appId}-counts-repartition`];
  t.teardown(() => k.admin.deleteTopics({ topics: internal }).catch(() => undefined));
  const stateDir = mkdtempSync(join(tmpdir(), 'vltava-cli-topics-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const lines = corpus(200);
  await produce(k, input!, lines);
  const admin = await ownAdmin(t, k);
  const app = await runToEnd(k, admin, appId, input!, output!, stateDir);
  t.teardown(() => app.close());

  const json = await vltava(['topics', '--application-id', appId, '--brokers', k.brokers.join(','), '--json']);
  t.is(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as TopicsReport;
  t.deepEqual(report.internalTopics.map((x) => [x.name, x.kind, x.partitions, x.cleanupPolicy]), [
    [internal[0], 'changelog', 2, 'compact'],
    [internal[1], 'repartition', 2, 'delete'],
  ]);
  t.is(report.internalTopics[1]!.retentionMs, '-1', 'repartition records stay until the app has read them');
  t.true(Object.values(report.internalTopics[0]!.endOffsets).reduce((a, b) => a + b, 0) > 0, 'the changelog has records');
  t.is(report.group.members.length, 1);
  t.is(report.group.state, 'Stable');
  const inputRows = report.offsets.filter((o) => o.topic === input);
  t.deepEqual(inputRows.map((o) => o.partition), [0, 1]);
  t.is(inputRows.reduce((a, o) => a + o.committed, 0), lines.length);
  t.true(inputRows.every((o) => o.lag === 0 && o.committed === o.end), JSON.stringify(inputRows));
  t.true(report.offsets.some((o) => o.topic === internal[1]), 'the repartition topic is read by the group');

  const text = await vltava(['topics', '--application-id', appId, '--brokers', k.brokers.join(',')]);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /Consumer group: Stable, 1 member\(s\)/);
  t.regex(text.stdout, new RegExp(`${internal[0]}\\s+changelog\\s+2\\s+compact`));
  t.regex(text.stdout, new RegExp(`${internal[1]}\\s+repartition\\s+2\\s+delete\\s+-1`));
  t.regex(text.stdout, /Total lag: 0/);

  const before = await offsetsOf(admin, appId, input!);
  const refused = await vltava(['reset', '--application-id', appId, '--brokers', k.brokers.join(','), '--input-topics', input!]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, new RegExp(`refusing to reset "${appId}": its consumer group has 1 active member\\(s\\).*Stop every instance`));
  t.is(refused.stdout, '', 'nothing was planned or printed as done');
  t.deepEqual(await offsetsOf(admin, appId, input!), before, 'offsets unchanged');
  const topics = new Set(await admin.listTopics());
  t.true(internal.every((x) => topics.has(x)), 'internal topics kept');
});
