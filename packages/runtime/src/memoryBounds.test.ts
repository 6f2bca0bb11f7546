/**
 * Memory is bounded by configuration (issue 14): the output records of an open commit count toward
 * maxPendingBytes with their real size, so large records make a task commit early instead of piling
 * up until the commit interval. (They used to count as 128 bytes each, whatever their size: 2,000
 * records of 10 KB were 20 MB held in memory under a 64 KiB cap.) Verified with kcat.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Serdes, StreamsBuilder } from '@vltava/dsl';
import { awaitCaughtUp, readCommittedKcat, useKafka } from '@vltava/kafka-local/testing';
import { KafkaStreams } from './index.js';

const kafka = useKafka(test);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const str = Serdes.string();

test('[broker] maxPendingBytes counts the bytes of buffered output records: large records commit early, each commit stays near the cap, output exactly once', async (t) => {
  const k = kafka();
  const [inTopic, outTopic] = await k.createTopics([{ prefix: 'mem-in', partitions: 1 }, { prefix: 'mem-out', partitions: 1 }]);
  const VALUE = 10_000;
  const N = 2_000;
  // Records per produced batch: a fetch returns whole batches (at least one, however large).
  const BATCH = 10;
  const values = Array.from({ length: N }, (_, i) => `${String(i).padStart(5, '0')}${'v'.repeat(VALUE - 5)}`);
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < N; i += BATCH) await producer.send({ topic: inTopic!, messages: values.slice(i, i + BATCH).map((value, j) => ({ key: `k${i + j}`, value })) });
  await producer.disconnect();

  const b = new StreamsBuilder();
  b.stream(inTopic!, { keySerde: str, valueSerde: str }).to(outTopic!, { keySerde: str, valueSerde: str });
  const applicationId = k.uniqueName('mem-bounds');
  const maxPendingBytes = 64 * 1024;
  const maxPartitionFetchBytes = 64 * 1024;
  const app = new KafkaStreams(b.build(), {
    applicationId,
    brokers: k.brokers,
    stateDir: mkdtempSync(join(tmpdir(), 'vltava-mem-')),
    // Far longer than the run: every commit before the end is an early one, forced by the cap.
    commitIntervalMs: 600_000,
    transactionTimeoutMs: 900_000,
    maxPendingBytes,
    maxPartitionFetchBytes,
    sessionTimeoutMs: 6_000,
    heartbeatIntervalMs: 500,
    logger: quiet,
  });
  t.teardown(() => app.close());
  const commits: number[] = [];
  app.on('task.committed', (e) => commits.push(e.records));
  await app.start();
  await awaitCaughtUp(k.admin, applicationId, inTopic!, 90_000);
  await app.close();

  // The cap is checked after each fetched batch, so a commit holds at most the cap plus one fetch
  // (the fetch limit, or one produced batch if that is larger).
  const bound = Math.ceil(maxPendingBytes / VALUE) + Math.max(Math.ceil(maxPartitionFetchBytes / VALUE), BATCH) + 2;
  t.true(commits.length >= N / bound, `${commits.length} commits for ${N} records`);
  t.true(Math.max(...commits) <= bound, `largest commit ${Math.max(...commits)} records of ${VALUE} B; bound ${bound}`);
  const out = await readCommittedKcat(k.brokers, outTopic!);
  t.is(out.length, N);
  t.deepEqual(out.map((r) => r.text), values);
});
