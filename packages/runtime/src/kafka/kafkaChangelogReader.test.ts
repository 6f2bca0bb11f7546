import test from 'ava';
import { useKafka } from '@vltava/kafka-local/testing';
import { ChangelogTruncatedError, type ChangelogRecord } from '@vltava/state';
import { KafkaChangelogReader } from './kafkaChangelogReader.js';

const kafka = useKafka(test);

test('[broker] the kafkajs changelog reader reads one partition from an offset to the end, read_committed', async (t) => {
  const k = kafka();
  const client = k.client();
  const [topic] = await k.createTopics([{ prefix: 'reader-changelog', partitions: 3, config: { 'cleanup.policy': 'compact,delete' } }]); // DeleteRecords needs 'delete'
  const producer = client.producer({ transactionalId: k.uniqueName('reader-tx'), idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const write = async (values: string[], partition: number, commit: boolean): Promise<void> => {
    const tx = await producer.transaction();
    await tx.send({ topic: topic!, messages: values.map((v) => ({ key: `key-${v}`, value: v, partition })) });
    await (commit ? tx.commit() : tx.abort());
  };
  await write(['a', 'b', 'c'], 1, true); // offsets 0..2, marker 3
  await write(['x', 'y'], 1, false); // aborted: 4..5, marker 6
  await write(['d', 'e'], 1, true); // 7..8, marker 9
  await write(['other'], 2, true); // another partition: must not be read
  await producer.disconnect();

  const reader = new KafkaChangelogReader({ kafka: client, admin: k.admin, applicationId: k.uniqueName('reader-app') });
  t.is(await reader.beginningOffset(topic!, 1), 0);
  const end = await reader.endOffset(topic!, 1);
  t.is(end, 10);
  const read = async (from: number): Promise<ChangelogRecord[]> => {
    const got: ChangelogRecord[] = [];
    await reader.read(topic!, 1, from, end, (records) => {
      got.push(...records);
    });
    return got;
  };
  const all = await read(0);
  t.deepEqual(all.map((r) => r.value?.toString()), ['a', 'b', 'c', 'd', 'e'], 'aborted records and other partitions are not read');
  t.deepEqual(all.map((r) => r.offset), [0, 1, 2, 7, 8]);
  t.is(all[0]!.key.toString(), 'key-a');
  const tail = await read(2);
  t.deepEqual(tail.map((r) => r.value?.toString()), ['c', 'd', 'e'], 'a read from a checkpoint + 1 returns only the tail');
  t.deepEqual(await read(end), [], 'nothing to read at the end');

  await k.admin.deleteTopicRecords({ topic: topic!, partitions: [{ partition: 1, offset: '7' }] });
  const err = await t.throwsAsync(read(2));
  t.true(err instanceof ChangelogTruncatedError, `${err?.name}: ${err?.message}`);
});
