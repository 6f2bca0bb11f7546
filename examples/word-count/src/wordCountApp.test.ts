/** Word count on the real broker, exactly once: the committed counts equal a plain count. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { awaitCaughtUp, readCommitted, useKafka } from '@vltava/kafka-local/testing';
import { words } from './buildWordCountTopology.js';
import { sampleLines, topCounts } from './sampleText.js';
import { createWordCountApp } from './wordCountApp.js';

const kafka = useKafka(test);

test('topCounts: largest first, ties by word', (t) => {
  t.deepEqual(topCounts(new Map([['b', 2], ['a', 2], ['c', 5], ['d', 1]]), 3), [['c', 5], ['a', 2], ['b', 2]]);
});

test('[broker] word count: the read_committed counts equal a plain count of the sample text, across a restart', async (t) => {
  const k = kafka();
  const [input, output] = await k.createTopics([{ prefix: 'wcx-lines', partitions: 3 }, { prefix: 'wcx-counts', partitions: 3 }]);
  const applicationId = k.uniqueName('wcx-app');
  const stateDir = mkdtempSync(join(tmpdir(), 'wcx-'));
  const lines = sampleLines(3_000, 5);
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const produce = async (from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i += 500) await producer.send({ topic: input!, messages: lines.slice(i, Math.min(to, i + 500)).map((value, j) => ({ key: `l${i + j}`, value })) });
  };
  const config = { applicationId, brokers: k.brokers, stateDir, inputTopic: input!, outputTopic: output!, sessionTimeoutMs: 6_000, logger: { info: () => undefined, warn: () => undefined, error: () => undefined } };
  // First run: half the text; a clean close; the second run continues from the local state.
  for (const [from, to] of [[0, 1_500], [1_500, 3_000]] as const) {
    const app = createWordCountApp(config);
    t.teardown(() => app.close());
    await app.start();
    await produce(from, to);
    await awaitCaughtUp(k.admin, applicationId, input!, 90_000);
    await awaitCaughtUp(k.admin, applicationId, `${applicationId}-counts-repartition`, 90_000);
    await app.close();
  }
  await producer.disconnect();
  const expected = new Map<string, number>();
  for (const l of lines) for (const w of words(l)) expected.set(w, (expected.get(w) ?? 0) + 1);
  const latest = new Map<string, number>();
  for (const r of await readCommitted(k.client(), output!)) latest.set(r.key!.toString(), Number(r.value!.readBigInt64BE(0)));
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  t.deepEqual(sorted(latest), sorted(expected));
  t.deepEqual(topCounts(latest, 3), topCounts(expected, 3));
});
