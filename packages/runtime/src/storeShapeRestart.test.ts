/**
 * Issue 13 item 12 on a real broker: restarting with a changed window size under the same store name
 * must not restore the old windows into the new store. The app fails to start the task with a
 * StateStoreError that says what to do, and nothing is written to the output.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Serdes, StreamsBuilder, TimeWindows, type Topology } from '@vltava/dsl';
import { awaitCaughtUp, readCommittedKcat, useKafka, type TestKafka } from '@vltava/kafka-local/testing';
import { KafkaStreams, type StreamsConfig } from './index.js';

const kafka = useKafka(test);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

function windowedCounts(input: string, output: string, sizeMs: number): Topology {
  const b = new StreamsBuilder();
  b.stream(input, { keySerde: Serdes.string(), valueSerde: Serdes.string() })
    .groupByKey()
    .windowedBy(TimeWindows.ofSizeWithNoGrace(sizeMs))
    .count({ name: 'counts' })
    .toStream()
    .to(output, { keySerde: Serdes.windowed(Serdes.string()), valueSerde: Serdes.int64() });
  return b.build();
}

/**
 * The error the changed topology fails with, or a rejection after 60 s that says what the app
 * restored and the changelog's offsets (the fresh-directory case failed that way once in CI, cause
 * not found yet).
 */
function refusal(k: TestKafka, app: KafkaStreams, applicationId: string): Promise<Error> {
  const restores: string[] = [];
  app.on('task.restore.end', (p) => restores.push(`${p.taskId}/${p.store}: ${p.restored} of ${p.total}`));
  const changelog = `${applicationId}-counts-changelog`;
  return new Promise<Error>((resolve, reject) => {
    const timer = setTimeout(() => {
      void k.admin
        .fetchTopicOffsets(changelog)
        .catch(() => [])
        .then((o) => reject(new Error(`no error from the changed topology within 60 s (state ${app.state}, tasks ${app.metrics().tasks.join(',')}, restored [${restores.join('; ')}], ${changelog} offsets ${JSON.stringify(o)})`)));
    }, 60_000);
    app.on('error', ({ error }) => {
      clearTimeout(timer);
      resolve(error);
    });
  });
}

test.serial('[broker] a window size changed under the same store name: the restart is refused with a StateStoreError, nothing is emitted', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'shape-in' }, { prefix: 'shape-out' }]);
  const applicationId = k.uniqueName('shape-app');
  const stateDir = mkdtempSync(join(tmpdir(), 'vltava-shape-'));
  const config: StreamsConfig = { applicationId, brokers: k.brokers, stateDir, sessionTimeoutMs: 6_000, cacheMaxBytesPerTask: 0, logger: quiet };
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.teardown(() => producer.disconnect());
  const send = (ts: number[]) => producer.send({ topic: input!, messages: ts.map((timestamp) => ({ key: 'a', value: 'x', timestamp: String(timestamp) })) });
  await send([0, 30_000, 70_000]);

  const v1 = new KafkaStreams(windowedCounts(input!, output!, 60_000), config);
  t.teardown(() => v1.close());
  await v1.start();
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  await v1.close();
  const before = (await readCommittedKcat(k.brokers, output!)).length;
  t.is(before, 3);

  await send([100_000]);
  const v2 = new KafkaStreams(windowedCounts(input!, output!, 120_000), config);
  t.teardown(() => v2.close());
  const failed = refusal(k, v2, applicationId);
  await v2.start();
  const error = await failed;
  await v2.close();
  t.is(error.name, 'StateStoreError');
  t.regex(error.message, /store "counts" of task 0_0/);
  t.regex(error.message, /windowSizeMs=60000/);
  t.regex(error.message, /windowSizeMs=120000/);
  t.regex(error.message, new RegExp(`vltava reset --application-id ${applicationId}`));
  t.is((await readCommittedKcat(k.brokers, output!)).length, before, 'no count of the new shape was emitted');
});

test.serial('[broker] the same change on a fresh state directory (another machine): the restore from the changelog is refused', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'shape2-in' }, { prefix: 'shape2-out' }]);
  const applicationId = k.uniqueName('shape2-app');
  const config = (): StreamsConfig => ({ applicationId, brokers: k.brokers, stateDir: mkdtempSync(join(tmpdir(), 'vltava-shape-')), sessionTimeoutMs: 6_000, cacheMaxBytesPerTask: 0, logger: quiet });
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.teardown(() => producer.disconnect());
  await producer.send({ topic: input!, messages: [0, 30_000, 70_000].map((ts) => ({ key: 'a', value: 'x', timestamp: String(ts) })) });
  const v1 = new KafkaStreams(windowedCounts(input!, output!, 60_000), config());
  t.teardown(() => v1.close());
  await v1.start();
  await awaitCaughtUp(k.admin, applicationId, input!, 60_000);
  await v1.close();
  const before = (await readCommittedKcat(k.brokers, output!)).length;
  t.is(before, 3, 'the first topology counted the three records');

  await producer.send({ topic: input!, messages: [{ key: 'a', value: 'x', timestamp: '100000' }] });
  const v2 = new KafkaStreams(windowedCounts(input!, output!, 120_000), config());
  t.teardown(() => v2.close());
  const failed = refusal(k, v2, applicationId);
  await v2.start();
  const error = await failed;
  await v2.close();
  t.is(error.name, 'StateStoreError');
  t.regex(error.message, /counts/);
  t.is((await readCommittedKcat(k.brokers, output!)).length, before, 'no count of the new shape was emitted');
});
