/**
 * Records the broker would reject (issue 12): too large for the output topic, or with a timestamp
 * the topic does not accept. Before productionExceptionHandler, one such record failed every commit
 * of its task, forever (a poison pill). Verified with kcat.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Serdes, StreamsBuilder, type Topology } from '@vltava/dsl';
import { awaitCaughtUp, readCommittedKcat, useKafka, type TestKafka } from '@vltava/kafka-local/testing';
import { KafkaStreams, type StreamsConfig } from './index.js';

const kafka = useKafka(test);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const str = Serdes.string();

function copy(input: string, output: string): Topology {
  const b = new StreamsBuilder();
  b.stream(input, { keySerde: str, valueSerde: str, name: 'in' }).to(output, { keySerde: str, valueSerde: str, name: 'out' });
  return b.build();
}

function config(k: TestKafka, applicationId: string, extra: Partial<StreamsConfig> = {}): StreamsConfig {
  return { applicationId, brokers: k.brokers, stateDir: mkdtempSync(join(tmpdir(), 'vltava-prod-')), sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, logger: quiet, ...extra };
}

async function produce(k: TestKafka, topic: string, messages: { key: string; value: string; timestamp?: string }[]): Promise<void> {
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({ topic, messages });
  await producer.disconnect();
}

const big = 'x'.repeat(5_000);
const FUTURE = String(Date.now() + 2 * 86_400_000);
// The input topic accepts any timestamp and size; the output topic has the limits under test.
const inputConfig = { 'max.message.bytes': '1048588', 'message.timestamp.after.max.ms': '9223372036854775807' };
const outputConfig = { 'max.message.bytes': '2000', 'message.timestamp.after.max.ms': '3600000' };
const input = [
  { key: 'a', value: 'small' },
  { key: 'b', value: big },
  { key: 'c', value: 'tomorrow', timestamp: FUTURE },
  { key: 'd', value: 'small too' },
];

test("[broker] productionExceptionHandler 'fail': a record the output topic would reject stops the app in ERROR at once, naming the record and the fix", async (t) => {
  const k = kafka();
  const [inTopic, outTopic] = await k.createTopics([{ prefix: 'pe-fail-in', config: inputConfig }, { prefix: 'pe-fail-out', config: outputConfig }]);
  await produce(k, inTopic!, input);
  const app = new KafkaStreams(copy(inTopic!, outTopic!), config(k, k.uniqueName('pe-fail')));
  t.teardown(() => app.close());
  const failed = new Promise<Error>((resolve) => app.on('error', ({ error, taskId }) => taskId === undefined && resolve(error)));
  await app.start();
  const error = await failed;
  t.is(app.state, 'ERROR');
  t.is(error.name, 'ProductionError');
  t.regex(error.message, /5\d{3} bytes, above the topic's max\.message\.bytes \(2000\).*productionExceptionHandler/);
  await app.close();
  t.deepEqual(await readCommittedKcat(k.brokers, outTopic!), [], 'nothing of the failed transaction committed');
});

test("[broker] productionExceptionHandler 'continue' drops rejected records with an event; { deadLetterTopic } describes them there; the rest is committed once", async (t) => {
  const k = kafka();
  const [inTopic, outA, outB, dead] = await k.createTopics([
    { prefix: 'pe-in', config: inputConfig },
    { prefix: 'pe-out-a', config: outputConfig },
    { prefix: 'pe-out-b', config: outputConfig },
    { prefix: 'pe-dead' },
  ]);
  await produce(k, inTopic!, input);

  const idA = k.uniqueName('pe-continue');
  const a = new KafkaStreams(copy(inTopic!, outA!), config(k, idA, { productionExceptionHandler: 'continue' }));
  t.teardown(() => a.close());
  const dropped: string[] = [];
  a.on('task.record.dropped', (e) => dropped.push(e.reason));
  await a.start();
  await awaitCaughtUp(k.admin, idA, inTopic!, 60_000);
  await a.close();
  t.deepEqual((await readCommittedKcat(k.brokers, outA!)).map((r) => r.text), ['small', 'small too']);
  t.is(dropped.length, 2);
  t.regex(dropped[0]!, /rejected by the broker: the record is \d+ bytes/);
  t.regex(dropped[1]!, /further in the future than the topic accepts/);

  const idB = k.uniqueName('pe-dlq');
  const b = new KafkaStreams(copy(inTopic!, outB!), config(k, idB, { productionExceptionHandler: { deadLetterTopic: dead! } }));
  t.teardown(() => b.close());
  await b.start();
  await awaitCaughtUp(k.admin, idB, inTopic!, 60_000);
  await b.close();
  t.deepEqual((await readCommittedKcat(k.brokers, outB!)).map((r) => r.text), ['small', 'small too']);
  const deadRecords = await readCommittedKcat(k.brokers, dead!);
  t.deepEqual(deadRecords.map((r) => [r.key?.toString(), r.value]), [['b', null], ['c', null]]);
});

test('[broker] many records that each fit a small max.message.bytes are sent in batches that fit it too (the limit is on the batch)', async (t) => {
  const k = kafka();
  const [inTopic, outTopic] = await k.createTopics([{ prefix: 'pe-batch-in' }, { prefix: 'pe-batch-out', config: { 'max.message.bytes': '2000' } }]);
  const values = Array.from({ length: 60 }, (_, i) => `${String(i).padStart(3, '0')}-${'y'.repeat(300)}`);
  await produce(k, inTopic!, values.map((value, i) => ({ key: `k${i}`, value })));
  const applicationId = k.uniqueName('pe-batch');
  const app = new KafkaStreams(copy(inTopic!, outTopic!), config(k, applicationId, { commitIntervalMs: 1_000 }));
  t.teardown(() => app.close());
  const errors: string[] = [];
  app.on('error', (e) => errors.push(e.error.message));
  await app.start();
  await awaitCaughtUp(k.admin, applicationId, inTopic!, 60_000);
  await app.close();
  t.deepEqual(errors, []);
  t.deepEqual((await readCommittedKcat(k.brokers, outTopic!)).map((r) => r.text), values);
});
