/** Interactive queries (issue 15): app.store(name) over the local tasks' committed state, on the real broker. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { awaitCaughtUp, useKafka, type TestKafka } from '@vltava/kafka-local/testing';
import { Serdes, StreamsBuilder } from '@vltava/dsl';
import { KafkaStreams, type StreamsConfig } from './index.js';
import { corpus, referenceCounts, wordCountTopology } from './testing/wordCount.test.helper.js';

const kafka = useKafka(test);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

function config(k: TestKafka, applicationId: string, extra: Partial<StreamsConfig> = {}): StreamsConfig {
  return { applicationId, brokers: k.brokers, stateDir: mkdtempSync(join(tmpdir(), 'vltava-iq-')), sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, logger: quiet, ...extra };
}

async function produce(k: TestKafka, topic: string, lines: readonly string[]): Promise<void> {
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < lines.length; i += 500) await producer.send({ topic, messages: lines.slice(i, i + 500).map((value, j) => ({ key: `l${i + j}`, value })) });
  await producer.disconnect();
}

async function until(pred: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('[broker] app.store(): two instances each serve the committed counts of their own tasks; together, every word once, equal to the reference', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'iq-in', partitions: 4 }, { prefix: 'iq-out', partitions: 4 }]);
  const lines = corpus(2_000, 150, 3);
  await produce(k, input!, lines);
  const applicationId = k.uniqueName('iq-app');
  const a = new KafkaStreams(wordCountTopology(input!, output!), config(k, applicationId, { applicationServer: 'a.example:8001' }));
  const b = new KafkaStreams(wordCountTopology(input!, output!), config(k, applicationId, { applicationServer: 'b.example:8002' }));
  t.teardown(() => Promise.all([a.close(), b.close()]).then(() => undefined));
  await a.start();
  await b.start();
  await until(() => a.state === 'RUNNING' && b.state === 'RUNNING' && a.metrics().tasks.length + b.metrics().tasks.length === 8 && b.metrics().tasks.length > 0, 'both instances running');
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  await awaitCaughtUp(k.admin, applicationId, `${applicationId}-counts-repartition`, 60_000);
  const reference = referenceCounts(lines);
  const seen = new Map<string, number>();
  let both = 0;
  for (const app of [a, b]) {
    const store = app.store<string, number>('counts');
    for (const { key, value } of store.all()) {
      if (seen.has(key)) both++;
      seen.set(key, value);
    }
  }
  t.is(both, 0, 'each word lives on one instance');
  t.deepEqual([...seen].sort(), [...reference].sort());
  const [word, count] = [...reference][0]!;
  t.is(a.store<string, number>('counts').get(word) ?? b.store<string, number>('counts').get(word), count);
  t.throws(() => a.store('nope'), { message: /no store "nope"; its stores are: counts/ });

  // Routing: any instance knows who holds a key.
  const members = await b.allMetadata();
  t.deepEqual(members.map((m) => m.applicationServer).sort(), ['a.example:8001', 'b.example:8002']);
  t.is(members.reduce((n, m) => n + m.tasks.length, 0), 8);
  t.deepEqual(members.find((m) => m.applicationServer === 'a.example:8001')!.tasks, [...a.metrics().tasks]);
  const byHost = new Map([['a.example:8001', a], ['b.example:8002', b]]);
  for (const w of [...reference.keys()].slice(0, 25)) {
    const meta = await a.queryMetadataForKey('counts', w, Serdes.string());
    const owner = byHost.get(meta.activeHost!)!;
    const other = owner === a ? b : a;
    t.is(owner.store<string, number>('counts').get(w), reference.get(w), `${w} is on ${meta.activeHost} (${meta.taskId})`);
    t.is(other.store<string, number>('counts').get(w), undefined);
  }
});

test('[broker] app.store() shows committed state only: records processed but not yet committed are not visible', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'iqc-in' }, { prefix: 'iqc-out' }]);
  const applicationId = k.uniqueName('iqc-app');
  // No repartition: the counting task processes the input directly, and commits only after 60 s.
  const b = new StreamsBuilder();
  b.stream(input!, { keySerde: Serdes.string(), valueSerde: Serdes.string(), name: 'words' })
    .groupByKey()
    .count({ name: 'counts' })
    .toStream({ name: 'updates' })
    .to(output!, { keySerde: Serdes.string(), valueSerde: Serdes.int64(), name: 'out' });
  const app = new KafkaStreams(b.build(), config(k, applicationId, { commitIntervalMs: 60_000, transactionTimeoutMs: 120_000 }));
  t.teardown(() => app.close());
  await app.start();
  await until(() => app.state === 'RUNNING', 'running');
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({ topic: input!, messages: [{ key: 'alpha', value: 'x' }, { key: 'beta', value: 'y' }, { key: 'alpha', value: 'z' }] });
  await producer.disconnect();
  await until(() => app.metrics().recordsProcessed >= 3, 'the words processed');
  const store = app.store<string, number>('counts');
  t.is(store.get('alpha'), undefined, 'uncommitted: invisible');
  t.deepEqual([...store.all()], []);
});
