/**
 * Exactly-once at the edges (issue 11): failure paths that kill -9 chaos never reaches, each on the
 * real broker, each verified with kcat (librdkafka), a reader that shares no code with kafkajs.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Serdes, StreamsBuilder, TimeWindows, type Topology } from '@vltava/dsl';
import { awaitCaughtUp as awaitCaughtUpRaw, committedOffsets, readCommittedKcat, useKafka, type TestKafka } from '@vltava/kafka-local/testing';
import { KafkaStreams, type StreamsConfig } from './index.js';
import { finalCounts, wordCountTopology } from './testing/wordCount.test.helper.js';

const kafka = useKafka(test);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const str = Serdes.string();

function passThrough(input: string, output: string): Topology {
  const b = new StreamsBuilder();
  b.stream(input, { keySerde: str, valueSerde: str, name: 'in' }).mapValues((v) => v.toUpperCase(), { name: 'upper' }).to(output, { keySerde: str, valueSerde: str, name: 'out' });
  return b.build();
}

async function produce(k: TestKafka, topic: string, values: readonly string[], extra: { partition?: number; timestamp?: (i: number) => number } = {}): Promise<void> {
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < values.length; i += 500) {
    await producer.send({
      topic,
      messages: values.slice(i, i + 500).map((value, j) => ({
        key: `k-${i + j}`,
        value,
        ...(extra.partition !== undefined ? { partition: extra.partition } : {}),
        ...(extra.timestamp !== undefined ? { timestamp: String(extra.timestamp(i + j)) } : {}),
      })),
    });
  }
  await producer.disconnect();
}

/** deleteRecords, retried: right after a topic is created kafkajs' admin may not know its leaders yet. */
async function deleteRecords(k: TestKafka, topic: string, partition: number, offset: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await k.admin.fetchTopicMetadata({ topics: [topic] });
      await k.admin.deleteTopicRecords({ topic, partitions: [{ partition, offset }] });
      return;
    } catch (e) {
      if (attempt >= 10) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const range = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `v${from + i}`);

/** Warnings and errors of every app, by application id: a stall shows what the app was doing. */
const appLogs = new Map<string, string[]>();
function recorder(applicationId: string): NonNullable<StreamsConfig['logger']> {
  const lines = appLogs.get(applicationId) ?? [];
  appLogs.set(applicationId, lines);
  const add = (level: string) => (m: string) => void lines.push(`${new Date().toISOString().slice(11, 23)} ${level} ${m.slice(0, 300)}`);
  return { info: () => undefined, warn: add('warn'), error: add('error') };
}

function config(k: TestKafka, applicationId: string, extra: Partial<StreamsConfig> = {}): StreamsConfig {
  return { applicationId, brokers: k.brokers, stateDir: mkdtempSync(join(tmpdir(), 'vltava-edge-')), sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, logger: recorder(applicationId), ...extra };
}

/** awaitCaughtUp, failing with the app's last warnings so that a stall can be diagnosed. */
async function awaitCaughtUp(admin: TestKafka['admin'], applicationId: string, topic: string, timeoutMs: number): Promise<void> {
  try {
    await awaitCaughtUpRaw(admin, applicationId, topic, timeoutMs);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${(appLogs.get(applicationId) ?? []).slice(-30).join('\n')}`);
  }
}

/** Resolves on the first event that satisfies `pred`. */
function once<T>(app: KafkaStreams, event: Parameters<KafkaStreams['on']>[0], pred: (p: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const l = (p: T): void => {
      if (pred(p)) {
        app.off(event, l as never);
        resolve(p);
      }
    };
    app.on(event, l as never);
  });
}

for (const guarantee of ['exactly-once', 'at-least-once'] as const) {
  test.serial(`[broker] ${guarantee}: a task whose first commit fails is rewound to the start, not to where kafkajs had fetched`, async (t) => {
    const k = kafka();
    const [input, output] = await k.createTopics([{ prefix: 'first-in' }, { prefix: 'first-out' }]);
    await produce(k, input!, range(0, 100));
    const applicationId = k.uniqueName('first-app');
    let failed = 0;
    const app = new KafkaStreams(
      passThrough(input!, output!),
      config(k, applicationId, {
        processingGuarantee: guarantee,
        commitIntervalMs: 100,
        faultInjection: (point) => {
          if (point === 'after-send' && failed++ === 0) throw new Error('injected: the first commit fails after the send');
        },
      }),
    );
    t.teardown(() => app.close());
    await app.start();
    await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
    await produce(k, input!, range(100, 110));
    await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
    await app.close();
    t.true(failed > 0, 'the fault was injected');
    const out = (await readCommittedKcat(k.brokers, output!)).map((r) => r.text);
    const expected = range(0, 110).map((v) => v.toUpperCase());
    if (guarantee === 'exactly-once') t.deepEqual(out, expected);
    else t.deepEqual([...new Set(out)], expected, 'at-least-once: every record, in order, possibly repeated');
  });
}

test.serial('[broker] a foreign producer fences a task: the app rejoins, takes the task back and processes new input exactly once', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'fence-in' }, { prefix: 'fence-out' }]);
  await produce(k, input!, range(0, 50));
  const applicationId = k.uniqueName('fence-app');
  const app = new KafkaStreams(passThrough(input!, output!), config(k, applicationId));
  t.teardown(() => app.close());
  const migrated = once(app, 'task.migrated');
  await app.start();
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  // A foreign producer takes the task's transactional id: the app's next commit is fenced.
  const foreign = k.client().producer({ transactionalId: `${applicationId}-0_0`, idempotent: true, maxInFlightRequests: 1 });
  await foreign.connect();
  await (await foreign.transaction()).abort();
  await foreign.disconnect();
  await produce(k, input!, range(50, 100));
  await migrated;
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  t.is(app.state, 'RUNNING');
  t.deepEqual(app.metrics().tasks, ['0_0']);
  await app.close();
  t.deepEqual(
    (await readCommittedKcat(k.brokers, output!)).map((r) => r.text),
    range(0, 100).map((v) => v.toUpperCase()),
  );
});

test.serial('[broker] a committed offset below the log start is reset by autoOffsetReset, with an event, and nothing is committed outside the transaction', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'oor-in' }, { prefix: 'oor-out' }]);
  await produce(k, input!, range(0, 100));
  const applicationId = k.uniqueName('oor-app');
  const cfg = config(k, applicationId);
  const first = new KafkaStreams(passThrough(input!, output!), cfg);
  t.teardown(() => first.close());
  await first.start();
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  await first.close();
  // Retention deletes input below offset 150, past the app's committed offset 100.
  await produce(k, input!, range(100, 200));
  await deleteRecords(k, input!, 0, '150');

  const second = new KafkaStreams(passThrough(input!, output!), cfg);
  t.teardown(() => second.close());
  const resets: { taskId: string; topic: string; from: number; to: number }[] = [];
  second.on('task.offset.reset', (e) => resets.push(e));
  const seen: number[] = [];
  const sampler = setInterval(() => {
    void committedOffsets(k.admin, applicationId, input!).then((m) => seen.push(m.get(0) ?? Number.NaN), () => undefined);
  }, 100);
  t.teardown(() => clearInterval(sampler));
  await second.start();
  await awaitCaughtUp(k.admin, applicationId, input!, 30_000);
  clearInterval(sampler);
  await second.close();
  t.deepEqual(resets, [{ taskId: '0_0', topic: input!, from: 100, to: 150, policy: 'earliest' }] as never);
  t.deepEqual(seen.filter((o) => !(o >= 100)), [], 'the group offset never left [100, 200] (kafkajs would commit -2)');
  t.deepEqual(
    (await readCommittedKcat(k.brokers, output!)).map((r) => r.text),
    [...range(0, 100), ...range(150, 200)].map((v) => v.toUpperCase()),
  );
});

test.serial('[broker] kafkajs is never allowed to commit its default offset (-2) when a fetch is out of range', async (t) => {
  const k = kafka();
  const [topic] = await k.createTopics([{ prefix: 'oor-raw' }]);
  await produce(k, topic!, range(0, 60));
  const groupId = k.uniqueName('oor-raw-group');
  await k.admin.setOffsets({ groupId, topic: topic!, partitions: [{ partition: 0, offset: '10' }] });
  await deleteRecords(k, topic!, 0, '50');
  // Importing the runtime installs the out-of-range guard on kafkajs' consumers.
  const consumer = k.client().consumer({ groupId, sessionTimeout: 6_000 });
  await consumer.connect();
  await consumer.subscribe({ topic: topic!, fromBeginning: true });
  const first = new Promise<string>((resolve) => void consumer.run({ autoCommit: false, eachMessage: async ({ message }) => resolve(message.offset) }));
  t.is(await first, '50', 'fetching resumed at the log start');
  await consumer.disconnect();
  t.is((await committedOffsets(k.admin, groupId, topic!)).get(0), 10, 'the committed offset is untouched');
});

test.serial('[broker] repartition topics keep records until they are read (retention.ms=-1) and are purged below the committed offset', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'rp-in', partitions: 2 }, { prefix: 'rp-out', partitions: 2 }]);
  const lines = Array.from({ length: 400 }, (_, i) => `a${i % 7} b${i % 5} c`);
  // Thirty-day-old events: a broker's default 7-day retention would delete them from the repartition topic.
  await produce(k, input!, lines, { timestamp: (i) => Date.now() - 30 * 86_400_000 + i });
  const applicationId = k.uniqueName('rp-app');
  const app = new KafkaStreams(wordCountTopology(input!, output!), config(k, applicationId, { repartitionPurgeIntervalMs: 200 }));
  t.teardown(() => app.close());
  await app.start();
  const repartition = `${applicationId}-counts-repartition`;
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  await awaitCaughtUp(k.admin, applicationId, repartition, 60_000);
  const described = await k.admin.describeConfigs({ resources: [{ type: 2, name: repartition, configNames: ['retention.ms'] }], includeSynonyms: false });
  t.is(described.resources[0]!.configEntries.find((e) => e.configName === 'retention.ms')?.configValue, '-1');
  // Purged: the log start of each repartition partition moves up to the committed offset.
  const deadline = Date.now() + 30_000;
  let lows: number[] = [];
  while (Date.now() < deadline) {
    lows = (await k.admin.fetchTopicOffsets(repartition)).map((p) => Number(p.low));
    if (lows.every((l) => l > 0)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await app.close();
  t.true(lows.every((l) => l > 0), `repartition log starts after purge: ${lows.join(',')}`);
  const counts = finalCounts(await readCommittedKcat(k.brokers, output!));
  t.is(counts.get('c'), 400);
  t.is(counts.get('a0'), 58);
});

test.serial('[broker] stream time survives a restart: a record late before the restart is late after it', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'st-in' }, { prefix: 'st-out' }]);
  const b = new StreamsBuilder();
  b.stream(input!, { keySerde: str, valueSerde: str, name: 'in' })
    .groupByKey()
    .windowedBy(TimeWindows.ofSizeAndGrace(10_000, 0))
    .count({ name: 'per-10s' })
    .toStream({ name: 'updates' })
    .map((w, n) => ({ key: `${w.key}@${w.window.start}`, value: String(n) }), { name: 'fmt' })
    .to(output!, { keySerde: str, valueSerde: str, name: 'out' });
  const topology = b.build();
  const applicationId = k.uniqueName('st-app');
  const cfg = config(k, applicationId);
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.teardown(() => producer.disconnect());
  await producer.send({ topic: input!, messages: [{ key: 'x', value: '1', timestamp: '10000' }, { key: 'x', value: '2', timestamp: '35000' }] });
  const first = new KafkaStreams(topology, cfg);
  t.teardown(() => first.close());
  await first.start();
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  await first.close();
  // Stream time is 35 000: the window [10 000, 20 000) closed. A fresh state dir: only Kafka remembers.
  const second = new KafkaStreams(topology, { ...cfg, stateDir: mkdtempSync(join(tmpdir(), 'vltava-edge-')) });
  t.teardown(() => second.close());
  const dropped: unknown[] = [];
  second.on('task.record.dropped', (e) => dropped.push(e));
  await second.start();
  await producer.send({ topic: input!, messages: [{ key: 'x', value: '3', timestamp: '12000' }] });
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  await second.close();
  const out = (await readCommittedKcat(k.brokers, output!)).map((r) => `${r.key?.toString()}=${r.text}`);
  t.deepEqual(out, ['x@10000=1', 'x@30000=1']);
  t.is(dropped.length, 1);
});

test.serial('[broker] a clean close commits before it leaves the group: the survivor never has to fence it', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'cc-in', partitions: 4 }, { prefix: 'cc-out', partitions: 4 }]);
  const applicationId = k.uniqueName('cc-app');
  // A long commit interval: on close, each task holds uncommitted work.
  const base = { commitIntervalMs: 30_000, transactionTimeoutMs: 60_000 };
  const a = new KafkaStreams(passThrough(input!, output!), config(k, applicationId, base));
  const b = new KafkaStreams(passThrough(input!, output!), config(k, applicationId, base));
  t.teardown(() => Promise.all([a.close(), b.close()]).then(() => undefined));
  const problems: string[] = [];
  for (const [name, app] of [['a', a], ['b', b]] as const) {
    app.on('task.migrated', (e) => problems.push(`${name} migrated ${e.taskId}`));
    app.on('error', (e) => problems.push(`${name} error ${e.error.message}`));
  }
  await a.start();
  await b.start();
  const deadline = Date.now() + 60_000;
  while ((a.metrics().tasks.length !== 2 || b.metrics().tasks.length !== 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.is(a.metrics().tasks.length + b.metrics().tasks.length, 4);
  await produce(k, input!, range(0, 400));
  while (a.metrics().recordsProcessed + b.metrics().recordsProcessed < 400 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  let closeCommits = 0;
  a.on('task.committed', () => closeCommits++);
  await a.close();
  t.is(closeCommits, 2, 'a committed both of its tasks on close');
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  await b.close();
  t.deepEqual(problems, []);
  const out = (await readCommittedKcat(k.brokers, output!)).map((r) => r.text).sort();
  t.deepEqual(out, range(0, 400).map((v) => v.toUpperCase()).sort());
});

test.serial('[broker] a global table whose partition is empty with a non-zero end offset (after deleteRecords) loads', async (t) => {
  const k = kafka();
  const [products, orders, out] = await k.createTopics([{ prefix: 'gte-products', partitions: 2 }, { prefix: 'gte-orders' }, { prefix: 'gte-out' }]);
  await produce(k, products!, ['old-0', 'old-1', 'old-2'], { partition: 1 });
  await deleteRecords(k, products!, 1, '-1');
  await produce(k, products!, ['name-0'], { partition: 0 });
  const b = new StreamsBuilder();
  const table = b.globalTable(products!, { name: 'products', keySerde: str, valueSerde: str });
  b.stream(orders!, { keySerde: str, valueSerde: str, name: 'orders' })
    .leftJoin(table, (p: string, name: string | null) => `${p}=${name ?? 'none'}`, { name: 'orders-products', keyMapper: (_k: string, p: string) => p })
    .to(out!, { keySerde: str, valueSerde: str, name: 'out' });
  const applicationId = k.uniqueName('gte-app');
  const app = new KafkaStreams(b.build(), config(k, applicationId));
  t.teardown(() => app.close());
  await Promise.race([app.start(), new Promise((_, reject) => setTimeout(() => reject(new Error('start() did not resolve within 30 s')), 30_000))]);
  await produce(k, orders!, ['k-0']);
  await awaitCaughtUp(k.admin, applicationId, orders!, 30_000);
  await app.close();
  t.deepEqual((await readCommittedKcat(k.brokers, out!)).map((r) => r.text), ['k-0=name-0']);
});

test.serial('[broker] a sessionTimeoutMs the broker rejects sends the app to ERROR at once, with the fix in the message (it used to crash-loop in REBALANCING)', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'st-bad-in' }, { prefix: 'st-bad-out' }]);
  const app = new KafkaStreams(passThrough(input!, output!), config(k, k.uniqueName('st-bad'), { sessionTimeoutMs: 1_000, heartbeatIntervalMs: 300 }));
  t.teardown(() => app.close());
  const failed = new Promise<Error>((resolve) => app.on('error', ({ error, taskId }) => taskId === undefined && resolve(error)));
  await app.start();
  const error = await failed;
  t.is(app.state, 'ERROR');
  t.is(error.name, 'ConfigError');
  t.regex(error.message, /INVALID_SESSION_TIMEOUT.*sessionTimeoutMs/);
});

test.serial('[broker] start() against an unreachable broker fails after brokerRetryTimeoutMs, not after kafkajs\' own retries', async (t) => {
  const app = new KafkaStreams(passThrough('a', 'b'), {
    applicationId: 'unreachable',
    brokers: ['127.0.0.1:1'],
    brokerRetryTimeoutMs: 12_000,
    logger: quiet,
    kafka: { retry: { retries: 1, initialRetryTime: 50 } },
  });
  const t0 = Date.now();
  const err = await t.throwsAsync(app.start());
  const elapsed = Date.now() - t0;
  t.regex(err!.message, /Cannot reach the Kafka brokers 127\.0\.0\.1:1 within brokerRetryTimeoutMs \(12000 ms\)/);
  t.true(elapsed >= 12_000, `it kept trying for the configured time (${elapsed} ms)`);
  t.is(app.state, 'ERROR');
});

test.serial('[broker] a broker that accepts connections but never answers: start() fails with a clear error, and no connection attempt is left to reject unhandled', async (t) => {
  const { createServer } = await import('node:net');
  const sockets: import('node:net').Socket[] = [];
  const silent = createServer((s) => void sockets.push(s)); // accepts, never answers
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const port = (silent.address() as { port: number }).port;
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => void process.off('unhandledRejection', onUnhandled));
  const app = new KafkaStreams(passThrough('a', 'b'), {
    applicationId: 'silent-broker',
    brokers: [`127.0.0.1:${port}`],
    brokerRetryTimeoutMs: 1_500,
    logger: quiet,
    kafka: { connectionTimeout: 1_000, requestTimeout: 1_000, retry: { retries: 2, initialRetryTime: 100 } },
  });
  const err = await t.throwsAsync(app.start());
  t.regex(err!.message, /Cannot reach the Kafka brokers 127\.0\.0\.1:\d+/);
  // kafkajs gives up on its own attempt later: that rejection must be handled.
  await new Promise((r) => setTimeout(r, 8_000));
  t.deepEqual(unhandled.map((e) => (e as Error).message), []);
});
