/**
 * pnpm bench:restore — restore throughput from a real changelog topic.
 *
 * Writes N changelog records (200k keys, values of 4 bytes) to a compacted topic of a real broker in
 * transactions, then times `TaskStores.restore()` of an empty LevelDB task directory through the
 * kafkajs ChangelogReader (read_committed), as a task that moved to a new instance does.
 * Broker: KAFKA_BROKERS, the `pnpm kafka:up` one, or a fresh local one from the jars.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Serde, StoreSpec } from '@vltava/dsl';
import { createTopicsAndWait, resolveBrokers } from '@vltava/kafka-local';
import { KafkaChangelogReader } from '@vltava/runtime';
import { openTaskStores } from '@vltava/state';
import { Kafka, logLevel } from 'kafkajs';
import { fmt, recordSection } from './report.js';

const N = Number(process.env.RESTORE_RECORDS ?? 400_000);
const KEYS = 200_000;
const app = `bench-restore-${Date.now().toString(36)}`;
const topic = `${app}-kv-changelog`;

const resolved = await resolveBrokers({ startLocal: true });
const kafka = new Kafka({ brokers: resolved.brokers, logLevel: logLevel.NOTHING, clientId: 'bench-restore' });
const admin = kafka.admin();
await admin.connect();
try {
  await createTopicsAndWait(admin, [{ topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }]);
  const producer = kafka.producer({ transactionalId: `${app}-writer`, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const t0 = Date.now();
  for (let i = 0; i < N; i += 20_000) {
    const tx = await producer.transaction();
    for (let j = i; j < Math.min(N, i + 20_000); j += 2_000) {
      const messages = [];
      for (let k = j; k < Math.min(N, j + 2_000); k++) {
        const v = Buffer.allocUnsafe(4);
        v.writeInt32BE(k);
        messages.push({ key: `key-${String(k % KEYS).padStart(9, '0')}`, value: v, partition: 0 });
      }
      await tx.send({ topic, messages });
    }
    await tx.commit();
  }
  await producer.disconnect();
  console.log(`wrote ${fmt(N)} changelog records in ${Date.now() - t0} ms`);

  const keySerde: Serde<string> = { name: 'string', serialize: (s) => Buffer.from(s, 'latin1'), deserialize: (b) => b.toString('latin1') };
  const valueSerde: Serde<number> = { name: 'int32', serialize: (n) => Buffer.from([n >>> 24, n >>> 16, n >>> 8, n]), deserialize: (b) => b.readInt32BE(0) };
  const spec = { name: 'kv', kind: 'keyValue', keySerde, valueSerde, logging: true, caching: false } as StoreSpec;
  const stateDir = mkdtempSync(join(tmpdir(), 'vltava-bench-restore-'));
  const stores = await openTaskStores({ applicationId: app, taskId: '0_0', partition: 0, specs: [spec], collector: { send: () => undefined }, backend: 'leveldb', stateDir });
  const reader = new KafkaChangelogReader({ kafka, admin, applicationId: app });
  let restored = 0;
  const t1 = Date.now();
  await stores.restore(reader, { onRestoreEnd: (p) => (restored = p.restored) });
  const ms = Date.now() - t1;
  const entries = stores.getStore<import('@vltava/dsl').KeyValueStore<string, number>>('kv').approximateNumEntries();
  await stores.close();
  rmSync(stateDir, { recursive: true, force: true });
  recordSection(
    'restore-kafka',
    'Restore from a real changelog topic (kafkajs ChangelogReader into LevelDB)',
    'pnpm bench:restore',
    [
      { metric: 'restore throughput', value: `${fmt((restored / ms) * 1000)} records/s`, note: `${fmt(restored)} records (${fmt(KEYS)} keys) in ${ms} ms, one partition, read_committed, includes the throwaway group join` },
    ],
    `Broker: ${resolved.source} ${resolved.brokers.join(',')}. Store entries after restore: ${fmt(entries)}.`,
  );
} finally {
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
  await resolved.release();
}
