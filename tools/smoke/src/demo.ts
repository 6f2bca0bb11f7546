/**
 * `pnpm demo` (until the ledger example lands): the exactly-once smoke pipeline with a visible
 * crash-and-recover moment. What it really does:
 *   1. gets a broker: KAFKA_BROKERS, the one from `pnpm kafka:up`, or a fresh local one from the jars;
 *   2. writes 5,000 records to an input topic (3 partitions);
 *   3. starts a copier process (consume -> uppercase -> produce + offsets in one transaction) that
 *      SIGKILLs itself in the middle of its 3rd transaction, after sending its outputs;
 *   4. starts it again: its transactional init fences the dead one and aborts the open transaction;
 *   5. verifies with an independent read_committed consumer: 0 lost, 0 duplicated.
 * It is not yet the Vltava runtime: it shows the Kafka transaction chain the runtime is built on.
 */
import { createTopicsAndWait, resolveBrokers } from '@vltava/kafka-local';
import { awaitCaughtUp, exactlyOnceReport, kafkaLogLevel, readCommitted } from '@vltava/kafka-local/testing';
import { Kafka } from 'kafkajs';
import { spawnCopier } from './childCopier.js';

const say = (s: string): void => console.log(`demo: ${s}`);
const N = 5_000;

const resolved = await resolveBrokers({ startLocal: true });
say(`broker ${resolved.brokers.join(',')} (from ${resolved.source})`);
const kafka = new Kafka({ clientId: 'vltava-demo', brokers: resolved.brokers, logLevel: kafkaLogLevel() });
const admin = kafka.admin();
await admin.connect();
const run = Date.now().toString(36);
const input = `demo-in-${run}`;
const output = `demo-out-${run}`;
const groupId = `demo-group-${run}`;
let ok = false;
try {
  await createTopicsAndWait(admin, [input, output].map((topic) => ({ topic, numPartitions: 3, replicationFactor: 1 })));
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const values = Array.from({ length: N }, (_, i) => `record-${i}`);
  for (let i = 0; i < N; i += 1_000) {
    await producer.send({ topic: input, messages: values.slice(i, i + 1_000).map((value, j) => ({ key: `k${(i + j) % 97}`, value })) });
  }
  await producer.disconnect();
  say(`wrote ${N} records to ${input}`);

  const base = { brokers: resolved.brokers, input, output, groupId, transactionalId: `demo-tx-${run}` };
  const first = spawnCopier({ ...base, crashAt: { tx: 3, point: 'after-send' } });
  say('copier #1 started; it will kill -9 itself inside its 3rd transaction, after sending outputs, before committing');
  const exit = await first.exited;
  say(`copier #1 died (${exit.signal}) with a transaction open: its outputs are in the log but uncommitted`);

  const second = spawnCopier(base);
  const initMs = await second.initialised;
  say(`copier #2 started: its transactional init took ${initMs} ms, fenced copier #1 and aborted its open transaction`);
  await awaitCaughtUp(admin, groupId, input);
  second.kill('SIGTERM');
  await second.exited;
  say('copier #2 caught up to the end of the input');

  const out = await readCommitted(kafka, output);
  const report = exactlyOnceReport(values.map((v) => v.toUpperCase()), out.map((r) => r.text));
  say(`independent read_committed check: ${out.length} outputs for ${N} inputs, ${report.missing.length} lost, ${report.duplicates.length} duplicated`);
  ok = out.length === N && report.missing.length === 0 && report.duplicates.length === 0 && report.unexpected.length === 0;
  say(ok ? 'exactly once: PASS' : 'exactly once: FAIL');
} finally {
  await admin.deleteTopics({ topics: [input, output] }).catch(() => undefined);
  await admin.disconnect();
  await resolved.release();
}
process.exit(ok ? 0 : 1);
