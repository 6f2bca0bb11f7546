/**
 * A broker restart in the middle of a run: the app must recover by itself and stay exact.
 * This test starts a broker of its own (from the official jars), because restarting the shared test
 * broker would disturb every other test.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { createTopicsAndWait, startLocalKafka } from '@vltava/kafka-local';
import { awaitCaughtUp, readCommitted } from '@vltava/kafka-local/testing';
import { Kafka, logLevel } from 'kafkajs';
import { KafkaStreams } from './index.js';
import { corpus, finalCounts, referenceCounts, wordCountTopology } from './testing/wordCount.test.helper.js';

const sorted = (m: Map<string, number>): [string, number][] => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

test('[broker] a broker restart mid-run: the app recovers by itself and the results are exact', async (t) => {
  const broker = await startLocalKafka({ port: 0, home: mkdtempSync(join(tmpdir(), 'vltava-restart-')), heapMb: 512 });
  t.teardown(() => broker.stop());
  const kafka = new Kafka({ brokers: [broker.brokers], logLevel: logLevel.NOTHING, clientId: 'restart-test' });
  const admin = kafka.admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  const input = 'restart-lines';
  const output = 'restart-counts';
  await createTopicsAndWait(admin, [input, output].map((topic) => ({ topic, numPartitions: 2, replicationFactor: 1 })));
  const lines = corpus(3_000, 120, 5);
  const produce = async (from: number, to: number): Promise<void> => {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({ topic: input, messages: lines.slice(from, to).map((value, i) => ({ key: `line-${from + i}`, value })) });
    await producer.disconnect();
  };
  await produce(0, 1_500);

  const applicationId = 'restart-app';
  const app = new KafkaStreams(wordCountTopology(input, output), {
    applicationId,
    brokers: [broker.brokers],
    stateDir: mkdtempSync(join(tmpdir(), 'vltava-restart-state-')),
    sessionTimeoutMs: 6_000,
    brokerRetryTimeoutMs: 90_000,
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  t.teardown(() => app.close());
  const states: string[] = [];
  app.on('app.state', ({ to }) => states.push(to));
  const errors: string[] = [];
  app.on('error', ({ error, taskId }) => errors.push(`${taskId ?? 'app'}: ${error.name}: ${error.message}`));
  let committed = 0;
  const firstCommits = new Promise<void>((resolve) => app.on('task.committed', () => ++committed >= 4 && resolve()));
  await app.start();
  await firstCommits;

  await broker.restart();
  t.log(`broker restarted (${broker.brokers}); app state ${app.state}`);
  await produce(1_500, 3_000);
  try {
    await awaitCaughtUp(admin, applicationId, input, 100_000);
    await awaitCaughtUp(admin, applicationId, `${applicationId}-counts-repartition`, 100_000);
  } catch (e) {
    throw new Error(`${(e as Error).message}; app ${app.state}; errors:\n${errors.join('\n')}`);
  }
  t.not(app.state, 'ERROR', errors.join('\n'));
  await app.close();

  const out = await readCommitted(kafka, output);
  t.deepEqual(sorted(finalCounts(out)), sorted(referenceCounts(lines)));
  t.false(states.includes('ERROR'), `states: ${states.join(' -> ')}`);
});
