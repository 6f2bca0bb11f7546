/**
 * Timestamp order across a task's input partitions on a real broker (issue 13, item 10; Kafka
 * Streams' max.task.idle.ms, KIP-695): a stream-table join whose table topic was written before the
 * stream must see every table row older than each stream record, on a fresh start too. Before, the
 * runtime processed each fetched batch as it came, so views fetched before the users' partition
 * caught up found no row. Verified with kcat.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Serdes, StreamsBuilder } from '@vltava/dsl';
import { awaitCaughtUp, readCommittedKcat, useKafka } from '@vltava/kafka-local/testing';
import { KafkaStreams } from './index.js';

const kafka = useKafka(test);
const str = Serdes.string();

test('[broker] a stream-table join on a fresh start: the table topic written first (older timestamps) is read before the newer stream records', async (t) => {
  const k = kafka();
  const [users, views, out] = await k.createTopics([{ prefix: 'idle-users' }, { prefix: 'idle-views' }, { prefix: 'idle-out' }]);
  const USERS = 40_000;
  const padding = 'p'.repeat(80);
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < USERS; i += 2_000) {
    await producer.send({ topic: users!, messages: Array.from({ length: 2_000 }, (_, j) => ({ key: `u${i + j}`, value: `name${i + j}-${padding}`, timestamp: String(1_000 + i + j) })) });
  }
  // Views of the last users written, all newer than every user row.
  const viewed = Array.from({ length: 500 }, (_, i) => USERS - 1 - i * 7);
  await producer.send({ topic: views!, messages: viewed.map((u, i) => ({ key: `v${i}`, value: `u${u}`, timestamp: String(1_000_000 + i) })) });
  await producer.disconnect();

  const b = new StreamsBuilder();
  const table = b.table(users!, { keySerde: str, valueSerde: str, name: 'users' });
  b.stream(views!, { keySerde: str, valueSerde: str, name: 'views' })
    .selectKey((_v, user) => user, { name: 'by-user' })
    .leftJoin(table, (user: string, name: string | null) => `${user}:${name === null ? 'NONE' : 'ok'}`, { name: 'views-users' })
    .to(out!, { keySerde: str, valueSerde: str, name: 'out' });
  const applicationId = k.uniqueName('idle-app');
  const topology = b.build();
  const app = new KafkaStreams(topology, {
    applicationId,
    brokers: k.brokers,
    stateDir: mkdtempSync(join(tmpdir(), 'vltava-idle-')),
    sessionTimeoutMs: 6_000,
    heartbeatIntervalMs: 500,
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  t.teardown(() => app.close());
  await app.start();
  const repartition = topology.internalTopics(applicationId).filter((x) => x.kind === 'repartition');
  t.is(repartition.length, 1);
  await awaitCaughtUp(k.admin, applicationId, views!, 90_000);
  await awaitCaughtUp(k.admin, applicationId, users!, 90_000);
  await awaitCaughtUp(k.admin, applicationId, repartition[0]!.name, 90_000);
  await app.close();
  const joined = (await readCommittedKcat(k.brokers, out!)).map((r) => r.text);
  t.is(joined.length, viewed.length);
  t.deepEqual(joined.filter((j) => j.endsWith('NONE')), [], 'every view found its user row');
});
