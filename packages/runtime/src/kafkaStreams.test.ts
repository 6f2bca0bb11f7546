/** The runtime against a real broker: word count, exactly once, end to end. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { ConfigError, Serdes, StreamsBuilder } from '@vltava/dsl';
import { awaitCaughtUp, readCommitted, useKafka, type TestKafka } from '@vltava/kafka-local/testing';
import { KafkaStreams, type StreamsConfig } from './index.js';
import { corpus, finalCounts, referenceCounts, wordCountTopology } from './testing/wordCount.test.helper.js';

const kafka = useKafka(test);
const sorted = (m: Map<string, number>): [string, number][] => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function produceLines(k: TestKafka, topic: string, lines: readonly string[]): Promise<void> {
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < lines.length; i += 500) {
    await producer.send({ topic, messages: lines.slice(i, i + 500).map((value, j) => ({ key: `line-${i + j}`, value })) });
  }
  await producer.disconnect();
}

function appConfig(k: TestKafka, applicationId: string, extra: Partial<StreamsConfig> = {}): StreamsConfig {
  return {
    applicationId,
    brokers: k.brokers,
    stateDir: mkdtempSync(join(tmpdir(), 'vltava-rt-')),
    sessionTimeoutMs: 6_000,
    logger: quiet,
    ...extra,
  };
}

test('[broker] word count under exactly-once: the read_committed output equals the reference counts', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'wc-lines', partitions: 3 }, { prefix: 'wc-counts', partitions: 3 }]);
  const lines = corpus(2_000);
  await produceLines(k, input!, lines);
  const applicationId = k.uniqueName('wc-app');
  const app = new KafkaStreams(wordCountTopology(input!, output!), appConfig(k, applicationId));
  t.teardown(() => app.close());
  const states: string[] = [];
  app.on('app.state', ({ to }) => states.push(to));
  let committed = 0;
  app.on('task.committed', ({ records }) => (committed += records));
  await app.start();
  await awaitCaughtUp(k.admin, applicationId, input!, 90_000);
  await awaitCaughtUp(k.admin, applicationId, `${applicationId}-counts-repartition`, 90_000);
  const metrics = app.metrics();
  await app.close();

  const out = await readCommitted(k.client(), output!);
  t.deepEqual(sorted(finalCounts(out)), sorted(referenceCounts(lines)));
  t.deepEqual(states.slice(0, 2), ['REBALANCING', 'RUNNING']);
  t.is(states.at(-1), 'NOT_RUNNING');
  t.true(committed > 0);
  t.is(metrics.tasks.length, 6, 'two sub-topologies x three partitions');
  t.true(metrics.recordsProcessed >= lines.length);
});

test('[broker] missing source topics and bad config fail before any processing, with a clear error', async (t) => {
  const k = kafka();
  const [output] = await k.createTopics([{ prefix: 'missing-out', partitions: 1 }]);
  const app = new KafkaStreams(wordCountTopology(k.uniqueName('does-not-exist'), output!), appConfig(k, k.uniqueName('missing-app')));
  const err = await t.throwsAsync(app.start(), { instanceOf: ConfigError });
  t.regex(err!.message, /does-not-exist.*do not exist.*Create them/);
  t.is(app.state, 'ERROR');

  t.throws(() => new KafkaStreams(wordCountTopology('a', 'b'), { ...appConfig(k, 'x'), transactionTimeoutMs: 50, commitIntervalMs: 100 }), {
    instanceOf: ConfigError,
    message: /transactionTimeoutMs \(50\) must be longer than commitIntervalMs \(100\)/,
  });
  t.throws(() => new KafkaStreams(wordCountTopology('a', 'b'), { ...appConfig(k, 'x'), brokers: [] }), { instanceOf: ConfigError, message: /brokers/ });
  t.throws(() => new KafkaStreams(wordCountTopology('a', 'b'), { ...appConfig(k, 'bad id!') }), { instanceOf: ConfigError, message: /applicationId/ });
});

function failingTopology(input: string, output: string): ReturnType<typeof wordCountTopology> {
  const builder = new StreamsBuilder();
  builder
    .stream(input, { keySerde: Serdes.string(), valueSerde: Serdes.string(), name: 'in' })
    .mapValues(
      (v) => {
        if (v === 'boom') throw new Error('cannot handle boom');
        return v.toUpperCase();
      },
      { name: 'upper' },
    )
    .to(output, { keySerde: Serdes.string(), valueSerde: Serdes.string(), name: 'out' });
  return builder.build();
}

test('[broker] a processing error goes to the dead-letter topic inside the transaction, and processing continues', async (t) => {
  const k = kafka();
  const [input, output, dlq] = await k.createTopics([{ prefix: 'dlq-in' }, { prefix: 'dlq-out' }, { prefix: 'dlq-dead' }]);
  await produceLines(k, input!, ['a', 'boom', 'b']);
  const applicationId = k.uniqueName('dlq-app');
  const app = new KafkaStreams(failingTopology(input!, output!), appConfig(k, applicationId, { processingExceptionHandler: { deadLetterTopic: dlq! } }));
  t.teardown(() => app.close());
  await app.start();
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  await app.close();
  t.deepEqual((await readCommitted(k.client(), output!)).map((r) => r.text), ['A', 'B']);
  const dead = await readCommitted(k.client(), dlq!);
  t.deepEqual(dead.map((r) => r.text), ['boom']);
  t.is(app.state, 'NOT_RUNNING');
});

test('[broker] with the fail handler, a processing error stops the app in ERROR and commits nothing of the failed transaction', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'fail-in' }, { prefix: 'fail-out' }]);
  await produceLines(k, input!, ['a', 'b', 'boom', 'c']);
  const applicationId = k.uniqueName('fail-app');
  const app = new KafkaStreams(failingTopology(input!, output!), appConfig(k, applicationId, { commitIntervalMs: 60_000, transactionTimeoutMs: 90_000 }));
  t.teardown(() => app.close());
  const failed = new Promise<Error>((resolve) => app.on('error', ({ error }) => resolve(error)));
  await app.start();
  const error = await failed;
  t.is(error.name, 'ProcessingError');
  t.regex(error.message, /cannot handle boom/);
  t.is(app.state, 'ERROR');
  await app.close();
  t.deepEqual((await readCommitted(k.client(), output!)).map((r) => r.text), [], 'the records before the failure were never committed');
});
