/** The runtime against a real broker: word count, exactly once, end to end. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { ConfigError } from '@vltava/dsl';
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
