/** Global tables on the real broker: loaded to their end before processing, then followed. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Serdes, StreamsBuilder } from '@vltava/dsl';
import { awaitCaughtUp, readCommitted, useKafka } from '@vltava/kafka-local/testing';
import { KafkaStreams } from './index.js';

const kafka = useKafka(test);

test('[broker] a stream joined with a global table sees the whole table, from every partition, before the first record', async (t) => {
  const k = kafka();
  const [products, orders, out] = await k.createTopics([{ prefix: 'gt-products', partitions: 3 }, { prefix: 'gt-orders', partitions: 2 }, { prefix: 'gt-out', partitions: 2 }]);
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  // 30 products spread over 3 partitions; product p-7 is updated twice, p-9 deleted (tombstone).
  await producer.send({ topic: products!, messages: Array.from({ length: 30 }, (_, i) => ({ key: `p-${i}`, value: `name-${i}` })) });
  await producer.send({ topic: products!, messages: [{ key: 'p-7', value: 'renamed-7' }, { key: 'p-9', value: null }] });
  await producer.send({ topic: orders!, messages: ['p-1', 'p-7', 'p-9', 'p-29', 'unknown'].map((p, i) => ({ key: `o-${i}`, value: p })) });
  await producer.disconnect();

  const str = Serdes.string();
  const b = new StreamsBuilder();
  const table = b.globalTable(products!, { name: 'products', keySerde: str, valueSerde: str });
  b.stream(orders!, { keySerde: str, valueSerde: str, name: 'orders' })
    .leftJoin(table, (product: string, name: string | null) => `${product}=${name ?? 'none'}`, { name: 'orders-products', keyMapper: (_k: string, product: string) => product })
    .to(out!, { keySerde: str, valueSerde: str, name: 'out' });
  const applicationId = k.uniqueName('gt-app');
  const app = new KafkaStreams(b.build(), {
    applicationId,
    brokers: k.brokers,
    stateDir: mkdtempSync(join(tmpdir(), 'vltava-gt-')),
    sessionTimeoutMs: 6_000,
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  t.teardown(() => app.close());
  await app.start();
  await awaitCaughtUp(k.admin, applicationId, orders!, 60_000);
  await app.close();
  const joined = (await readCommitted(k.client(), out!)).map((r) => r.text).sort();
  t.deepEqual(joined, ['p-1=name-1', 'p-29=name-29', 'p-7=renamed-7', 'p-9=none', 'unknown=none']);
});
