/**
 * numStreamThreads (issue 14): one process, N stream threads (worker threads), each its own group
 * member, sharing one state directory. Exactness is checked with kcat (librdkafka), an independent
 * read_committed reader: the final count of every word equals the reference and each word's count
 * updates strictly increase (a duplicate would repeat a count).
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { awaitCaughtUp, readCommittedKcat, useKafka, type ReadRecord, type TestKafka } from '@vltava/kafka-local/testing';
import { ConfigError, Serdes } from '@vltava/dsl';
import { KafkaStreams, type StreamsConfig } from './index.js';
import { terminateStreamThreadForTesting } from './streamThreads.js';
import { corpus, finalCounts, referenceCounts, wordCountTopology } from './testing/wordCount.test.helper.js';

const kafka = useKafka(test);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const sorted = (m: Map<string, number>): [string, number][] => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
const moduleUrl = (input: string, output: string): URL => new URL(`./testing/wordCountModule.test.helper.js?input=${input}&output=${output}`, import.meta.url);

function config(k: TestKafka, applicationId: string, extra: Partial<StreamsConfig> = {}): StreamsConfig {
  return {
    applicationId,
    brokers: k.brokers,
    stateDir: mkdtempSync(join(tmpdir(), 'vltava-threads-')),
    sessionTimeoutMs: 6_000,
    heartbeatIntervalMs: 500,
    logger: quiet,
    numStreamThreads: 2,
    ...extra,
  };
}

async function produce(k: TestKafka, topic: string, lines: readonly string[], offset = 0): Promise<void> {
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < lines.length; i += 250) await producer.send({ topic, messages: lines.slice(i, i + 250).map((value, j) => ({ key: `l${offset + i + j}`, value })) });
  await producer.disconnect();
}

async function until(pred: () => boolean, what: string, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Words whose committed count updates do not strictly increase (a duplicate shows as a repeat). */
function nonIncreasing(records: readonly ReadRecord[]): string[] {
  const last = new Map<string, number>();
  const bad = new Set<string>();
  for (const r of [...records].sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset))) {
    const w = r.key!.toString();
    const c = Number(r.value!.readBigInt64BE(0));
    if (c <= (last.get(w) ?? 0)) bad.add(w);
    last.set(w, c);
  }
  return [...bad];
}

const bothThreadsHaveTasks = (app: KafkaStreams, tasks = 8): boolean => {
  const threads = app.metadataForLocalThreads();
  return app.state === 'RUNNING' && threads.every((t) => t.activeTasks.length > 0) && threads.reduce((n, t) => n + t.activeTasks.length, 0) === tasks;
};

test('[broker] numStreamThreads 2: a word count over 4 partitions is exact (kcat), tasks are spread over both threads, close() stops every thread', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'thr-in', partitions: 4 }, { prefix: 'thr-out', partitions: 4 }]);
  const lines = corpus(3_000, 150, 5);
  await produce(k, input!, lines);
  const applicationId = k.uniqueName('thr-app');
  // stateCleanupDelayMs 0: every unowned task directory is removed at the next cleanup (each second).
  const cfg = config(k, applicationId, { applicationServer: 'thr.example:9000', stateCleanupDelayMs: 0 });
  const app = await KafkaStreams.fromModule(moduleUrl(input!, output!), cfg);
  t.teardown(() => app.close());
  const states: string[] = [];
  app.on('app.state', ({ to }) => states.push(to));
  const committedBy = new Set<string>();
  app.on('task.committed', ({ taskId }) => committedBy.add(taskId));
  await app.start();
  await until(() => bothThreadsHaveTasks(app), 'both threads running tasks');
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  await awaitCaughtUp(k.admin, applicationId, `${applicationId}-counts-repartition`, 60_000);

  const threads = app.metadataForLocalThreads();
  t.log(threads.map((x) => `${x.threadName}: ${x.activeTasks.join(' ')}`).join('; '));
  t.deepEqual(threads.map((x) => x.threadName), [`${applicationId}-StreamThread-1`, `${applicationId}-StreamThread-2`]);
  const owner = new Map(threads.flatMap((x) => x.activeTasks.map((id) => [id, x.threadName] as const)));
  t.is(owner.size, 8, 'every task on exactly one thread');
  for (const x of threads) t.true(x.activeTasks.some((id) => id.startsWith('1_')), `${x.threadName} counts too: the stateful sub-topology is spread over the threads`);
  t.deepEqual(app.metrics().tasks, [...owner.keys()].sort());
  t.true(committedBy.size > 0, 'task.committed events reach the main thread');

  // Each thread is a member of the group.
  const members = await app.allMetadata();
  t.is(members.length, 2);
  t.is(new Set(members.map((m) => m.memberId)).size, 2);
  t.deepEqual(members.map((m) => m.applicationServer), ['thr.example:9000', 'thr.example:9000']);

  // The threads share one state directory: the cleanup must never remove a sibling thread's task
  // directories. No event marks a cleanup pass, so this waits for a few of them (one a second).
  await new Promise((r) => setTimeout(r, 2_500));
  for (const id of ['1_0', '1_1', '1_2', '1_3']) t.true(existsSync(join(cfg.stateDir!, applicationId, id, 'vltava.lock')), `${id} (on ${owner.get(id)}) keeps its locked directory`);
  t.true(bothThreadsHaveTasks(app));

  const reference = referenceCounts(lines);
  await app.close();
  t.is(app.state, 'NOT_RUNNING');
  t.deepEqual(app.metadataForLocalThreads().map((x) => x.threadState), ['NOT_RUNNING', 'NOT_RUNNING']);
  t.true(states.includes('RUNNING'));

  const out = await readCommittedKcat(k.brokers, output!);
  t.deepEqual(sorted(finalCounts(out)), sorted(reference), 'kcat: exact counts');
  t.deepEqual(nonIncreasing(out), [], 'no count update is repeated');
});

test('[broker] numStreamThreads 2: store() reads a count that lives in either thread; queryMetadataForKey routes to the owning task', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'thrq-in', partitions: 4 }, { prefix: 'thrq-out', partitions: 4 }]);
  const words = corpus(1_500, 120, 13).flatMap((l) => l.split(' '));
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < words.length; i += 500) await producer.send({ topic: input!, messages: words.slice(i, i + 500).map((w) => ({ key: w, value: 'x' })) });
  await producer.disconnect();
  const applicationId = k.uniqueName('thrq-app');
  // One sub-topology: its 4 tasks are all stateful, 2 on each thread.
  const app = await KafkaStreams.fromModule(moduleUrl(input!, output!), config(k, applicationId, { applicationServer: 'thrq.example:9000' }), { exportName: 'keyCount' });
  t.teardown(() => app.close());
  await app.start();
  await until(() => app.state === 'RUNNING' && app.metadataForLocalThreads().every((x) => x.activeTasks.length === 2), 'two tasks on each thread');
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  const owner = new Map(app.metadataForLocalThreads().flatMap((x) => x.activeTasks.map((id) => [id, x.threadName] as const)));
  const reference = new Map<string, number>();
  for (const w of words) reference.set(w, (reference.get(w) ?? 0) + 1);
  // Committed state: wait until every thread has committed what it processed.
  const store = app.store<string, number>('counts');
  await until(() => store.approximateNumEntries() === reference.size && [...store.all()].every(({ key, value }) => value === reference.get(key)), 'every count committed');
  t.deepEqual(sorted(new Map([...store.all()].map(({ key, value }) => [key, value]))), sorted(reference));
  const threadsSeen = new Set<string>();
  for (const w of [...reference.keys()].slice(0, 40)) {
    const meta = await app.queryMetadataForKey('counts', w, Serdes.string());
    t.is(meta.activeHost, 'thrq.example:9000');
    threadsSeen.add(owner.get(meta.taskId)!);
    t.is(store.get(w), reference.get(w), `${w} (${meta.taskId} on ${owner.get(meta.taskId)})`);
  }
  t.is(threadsSeen.size, 2, 'the keys read live in both threads');
  t.is(store.get('no-such-word'), undefined);
  const w0 = [...reference.keys()].sort()[0]!;
  t.deepEqual([...store.range(w0, w0)], [{ key: w0, value: reference.get(w0) }]);
  t.deepEqual([...store.prefixScan(w0, Serdes.string())].map((e) => e.key).sort(), [...reference.keys()].filter((w) => w.startsWith(w0)).sort());
  t.throws(() => app.store('nope'), { message: /no store "nope"; its stores are: counts/ });
});

test('[broker] numStreamThreads 2 under exactly-once: a stream thread killed mid-stream is replaced (REPLACE_THREAD); nothing lost or duplicated (kcat)', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'thrk-in', partitions: 4 }, { prefix: 'thrk-out', partitions: 4 }]);
  const lines = corpus(6_000, 200, 9);
  await produce(k, input!, lines.slice(0, 2_000));
  const applicationId = k.uniqueName('thrk-app');
  const errors: { message: string; threadId: string | undefined }[] = [];
  const app = await KafkaStreams.fromModule(
    moduleUrl(input!, output!),
    config(k, applicationId, { uncaughtExceptionHandler: () => 'REPLACE_THREAD' }),
    { exportName: 'wordCount' },
  );
  t.teardown(() => app.close());
  app.on('error', ({ error, threadId }) => errors.push({ message: error.message, threadId }));
  await app.start();
  await until(() => bothThreadsHaveTasks(app), 'both threads running tasks');
  // Kill thread 2 while records flow: it dies with open transactions.
  const feeding = produce(k, input!, lines.slice(2_000, 4_000), 2_000);
  const before = app.metrics().recordsProcessed;
  await until(() => app.metrics().recordsProcessed > before, 'processing');
  await terminateStreamThreadForTesting(app, 1);
  await feeding;
  await until(() => errors.length > 0, 'the error event of the dead thread');
  t.is(errors[0]!.threadId, `${applicationId}-StreamThread-2`);
  t.regex(errors[0]!.message, /stopped unexpectedly/);
  await produce(k, input!, lines.slice(4_000), 4_000);
  // The replacement joins as a new member and gets tasks again (after the dead member's session expires).
  await until(() => bothThreadsHaveTasks(app), 'the replaced thread running tasks', 50_000);
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  await awaitCaughtUp(k.admin, applicationId, `${applicationId}-counts-repartition`, 60_000);
  await app.close();
  t.deepEqual(app.metadataForLocalThreads().map((x) => x.threadState), ['NOT_RUNNING', 'NOT_RUNNING']);

  const out = await readCommittedKcat(k.brokers, output!);
  t.deepEqual(sorted(finalCounts(out)), sorted(referenceCounts(lines)), 'kcat: exact counts');
  t.deepEqual(nonIncreasing(out), [], 'no count update is repeated');
});

test('[broker] numStreamThreads 2, SHUTDOWN_CLIENT (the default handler): a dead thread stops the app in ERROR; close() ends every thread', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'thrs-in', partitions: 2 }, { prefix: 'thrs-out', partitions: 2 }]);
  const applicationId = k.uniqueName('thrs-app');
  const app = await KafkaStreams.fromModule(moduleUrl(input!, output!), config(k, applicationId));
  t.teardown(() => app.close());
  const errors: (string | undefined)[] = [];
  app.on('error', ({ threadId }) => errors.push(threadId));
  await app.start();
  await until(() => bothThreadsHaveTasks(app, 4), 'both threads running tasks');
  await terminateStreamThreadForTesting(app, 0);
  await until(() => app.state === 'ERROR', 'ERROR');
  t.deepEqual(errors, [`${applicationId}-StreamThread-1`]);
  t.false(app.health().live);
  t.regex(app.health().error!.message, /StreamThread-1 stopped unexpectedly/);
  await app.close();
  t.is(app.state, 'NOT_RUNNING');
  t.deepEqual(app.metadataForLocalThreads().map((x) => x.threadState), ['NOT_RUNNING', 'NOT_RUNNING']);
});

test('[broker] numStreamThreads 2: a processing error in one thread (handler "fail", SHUTDOWN_CLIENT) stops the app in ERROR with that error and its thread', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'thrp-in', partitions: 2 }, { prefix: 'thrp-out', partitions: 2 }]);
  const applicationId = k.uniqueName('thrp-app');
  const handled: string[] = [];
  const app = await KafkaStreams.fromModule(moduleUrl(input!, output!), config(k, applicationId, { uncaughtExceptionHandler: (e) => (handled.push(e.message), 'SHUTDOWN_CLIENT') }), { exportName: 'poison' });
  t.teardown(() => app.close());
  const errors: { message: string; threadId: string | undefined }[] = [];
  app.on('error', ({ error, threadId }) => errors.push({ message: error.message, threadId }));
  await app.start();
  await until(() => bothThreadsHaveTasks(app, 2), 'both threads running tasks');
  const boomTask = app.metadataForLocalThreads()[1]!.activeTasks[0]!;
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({ topic: input!, messages: [{ key: 'k', value: 'boom', partition: Number(boomTask.split('_')[1]) }] });
  await producer.disconnect();
  await until(() => app.state === 'ERROR', 'ERROR');
  t.is(handled.length, 1);
  t.regex(handled[0]!, /boom: a poison record/);
  t.regex(app.health().error!.message, /boom: a poison record/);
  await until(() => errors.length > 0, 'the error event');
  t.is(errors[0]!.threadId, `${applicationId}-StreamThread-2`);
  await app.close();
  t.deepEqual(app.metadataForLocalThreads().map((x) => x.threadState), ['NOT_RUNNING', 'NOT_RUNNING']);
});

test('[broker] numStreamThreads 2, REPLACE_THREAD after a processing error: the thread is replaced, its aborted transaction is redone once; every record exactly once (kcat)', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'thrr-in', partitions: 2 }, { prefix: 'thrr-out', partitions: 2 }]);
  const applicationId = k.uniqueName('thrr-app');
  const marker = join(mkdtempSync(join(tmpdir(), 'vltava-thrr-')), 'thrown');
  const url = new URL(`./testing/wordCountModule.test.helper.js?input=${input}&output=${output}&marker=${encodeURIComponent(marker)}`, import.meta.url);
  const handled: string[] = [];
  const app = await KafkaStreams.fromModule(url, config(k, applicationId, { uncaughtExceptionHandler: (e) => (handled.push(e.message), 'REPLACE_THREAD') }), { exportName: 'poisonOnce' });
  t.teardown(() => app.close());
  await app.start();
  await until(() => bothThreadsHaveTasks(app, 2), 'both threads running tasks');
  const values = Array.from({ length: 400 }, (_, i) => (i === 250 ? 'boom' : `v${i}`));
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < values.length; i += 50) await producer.send({ topic: input!, messages: values.slice(i, i + 50).map((value, j) => ({ key: `k${i + j}`, value })) });
  await producer.disconnect();
  await until(() => handled.length > 0, 'the processing error');
  t.regex(handled[0]!, /boom: a poison record, once/);
  await until(() => bothThreadsHaveTasks(app, 2), 'the replaced thread running', 50_000);
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  t.is(app.state, 'RUNNING');
  t.is(handled.length, 1);
  await app.close();
  const out = await readCommittedKcat(k.brokers, output!);
  t.deepEqual(out.map((r) => r.value!.toString()).sort(), [...values].sort(), 'kcat: every value once, the poison record too');
});

test('numStreamThreads: a topology module that creates the app itself when a thread imports it fails start() with what to change', async (t) => {
  const app = await KafkaStreams.fromModule(new URL('./testing/selfStarting.test.helper.js', import.meta.url), { applicationId: 'thr-self', brokers: ['127.0.0.1:9'], numStreamThreads: 2, logger: quiet });
  await t.throwsAsync(app.start(), { message: /fromModule was called while stream thread thr-self-StreamThread-\d imported the topology module/ });
  t.is(app.state, 'ERROR');
  await app.close();
  t.deepEqual(app.metadataForLocalThreads().map((x) => x.threadState), ['NOT_RUNNING', 'NOT_RUNNING']);
});

test('numStreamThreads: a Topology object is refused with the way to fromModule; bad values name the key', async (t) => {
  const base = { applicationId: 'thr-config', brokers: ['127.0.0.1:9092'], logger: quiet };
  const topology = wordCountTopology('in', 'out');
  t.throws(() => new KafkaStreams(topology, { ...base, numStreamThreads: 2 }), { instanceOf: ConfigError, message: /cannot be sent to a worker .*await KafkaStreams\.fromModule\(new URL/s });
  for (const bad of [0, -1, 1.5, 10_000, Number.NaN]) {
    t.throws(() => new KafkaStreams(topology, { ...base, numStreamThreads: bad }), { instanceOf: ConfigError, message: /^numStreamThreads must be an integer from 1 to 64/ }, String(bad));
  }
  t.throws(() => new KafkaStreams(topology, { ...base, numStreamThreds: 2 } as StreamsConfig), { message: /did you mean "numStreamThreads"/ });
  // 1 thread: today's in-process app.
  const one = await KafkaStreams.fromModule(moduleUrl('in', 'out'), base);
  t.deepEqual(one.metadataForLocalThreads().map((x) => [x.threadName, x.threadState]), [['thr-config-StreamThread-1', 'CREATED']]);
  const url = moduleUrl('in', 'out');
  await t.throwsAsync(KafkaStreams.fromModule(url, { ...base, numStreamThreads: 2 }, { exportName: 'nope' }), { instanceOf: ConfigError, message: /has no export "nope" \(its exports: [^)]*\btopology, wordCount\)\. Export the topology as/ });
  await t.throwsAsync(KafkaStreams.fromModule('./does-not-exist.js', base), { instanceOf: ConfigError, message: /could not import/ });
  await t.throwsAsync(KafkaStreams.fromModule('some-package', base), { instanceOf: ConfigError, message: /import\.meta\.resolve\('some-package'\)/ });
  await t.throwsAsync(KafkaStreams.fromModule(url, { ...base, numStreamThreads: 2, clock: () => 0 }), { instanceOf: ConfigError, message: /^clock cannot be used with numStreamThreads 2/ });
  await t.throwsAsync(KafkaStreams.fromModule(url, { ...base, numStreamThreads: 2, numStandbyReplicas: 1 }), { instanceOf: ConfigError, message: /^numStandbyReplicas cannot be used with numStreamThreads 2/ });
  await t.throwsAsync(KafkaStreams.fromModule(url, { ...base, numStreamThreads: 2, kafka: { socketFactory: (() => undefined) as never } }), { instanceOf: ConfigError, message: /^kafka cannot be sent to the stream threads/ });
});
