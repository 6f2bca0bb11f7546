/** The kcat verifier against the real broker: committed and plain records in, aborted ones out. */
import test from 'ava';
import { readCommitted, useKafka } from '@vltava/kafka-local/testing';
import { KcatFrameParser, KcatMissingError, compareReadings, kcatVersion, readCommittedWithKcat, type KcatRecord } from './kcatReader.js';

const kafka = useKafka(test);

test('the frame parser is binary-safe and accepts output split anywhere', (t) => {
  const key = Buffer.from([0, 255, 10]);
  const value = Buffer.from('a\nb\n');
  const out = Buffer.concat([
    Buffer.from(`3 17 ${key.length} ${value.length} 1000\n`),
    key,
    value,
    Buffer.from('\n0 5 -1 -1 -1\n\n1 2 0 1 7\nx\n'),
  ]);
  for (let cut = 0; cut <= out.length; cut++) {
    const p = new KcatFrameParser();
    const got: KcatRecord[] = [];
    p.push(out.subarray(0, cut), (r) => got.push(r));
    p.push(out.subarray(cut), (r) => got.push(r));
    t.is(got.length, 3, `cut at ${cut}`);
    t.deepEqual(got[0]!.key, key);
    t.deepEqual(got[0]!.value, value);
    t.is(got[0]!.offset, '17');
    t.is(got[1]!.key, null);
    t.is(got[1]!.value, null);
    t.deepEqual(got[2]!.key, Buffer.alloc(0));
    t.is(got[2]!.text, 'x');
  }
  t.throws(() => new KcatFrameParser().push(Buffer.from('garbage\n'), () => undefined), { message: /unexpected output/ });
});

test('a missing kcat is a clear error', (t) => {
  const saved = process.env.KCAT;
  process.env.KCAT = '/nonexistent/kcat';
  try {
    const e = t.throws(() => kcatVersion(), { instanceOf: KcatMissingError });
    t.regex(e!.message, /apt-get install -y kcat/);
  } finally {
    if (saved === undefined) delete process.env.KCAT;
    else process.env.KCAT = saved;
  }
});

test('compareReadings names records only one reader saw and differing bytes', (t) => {
  const r = (p: number, o: number, v: string) => ({ partition: p, offset: String(o), key: null, value: Buffer.from(v) });
  t.deepEqual(compareReadings('t', 'A', [r(0, 1, 'x'), r(0, 2, 'y')], 'B', [r(0, 1, 'x'), r(0, 2, 'y')]), []);
  const d = compareReadings('t', 'A', [r(0, 1, 'x'), r(0, 2, 'y')], 'B', [r(0, 1, 'z'), r(1, 4, 'w')]);
  t.deepEqual(d, ['t 0/1: A and B read different bytes', 't 0/2: read by A only (y)', 't 1/4: read by B only (w)']);
});

test('[broker] kcat reads committed and plain records, never aborted ones, and agrees with kafkajs', async (t) => {
  const k = kafka();
  const client = k.client();
  const [topic] = await k.createTopics([{ prefix: 'kcat-read', partitions: 3 }]);
  const plain = client.producer({ idempotent: true, maxInFlightRequests: 1 });
  await plain.connect();
  await plain.send({ topic: topic!, messages: [{ partition: 0, key: null, value: 'plain-0' }, { partition: 1, key: Buffer.from([0, 1, 10]), value: Buffer.from([255, 10, 0]) }] });
  await plain.disconnect();
  const tp = client.producer({ transactionalId: k.uniqueName('kcat-tx'), idempotent: true, maxInFlightRequests: 1 });
  await tp.connect();
  const committed = Array.from({ length: 30 }, (_, i) => ({ partition: i % 3, key: `k${i}`, value: `committed-${i}` }));
  let tx = await tp.transaction();
  await tx.send({ topic: topic!, messages: committed.slice(0, 15) });
  await tx.commit();
  tx = await tp.transaction();
  await tx.send({ topic: topic!, messages: Array.from({ length: 12 }, (_, i) => ({ partition: i % 3, key: `a${i}`, value: `aborted-${i}` })) });
  await tx.abort();
  tx = await tp.transaction();
  await tx.send({ topic: topic!, messages: committed.slice(15) });
  await tx.commit();
  await tp.disconnect();

  const got = await readCommittedWithKcat(k.brokers, topic!, { timeoutMs: 60_000 });
  const texts = got.filter((r) => r.text.startsWith('committed-')).map((r) => r.text).sort();
  t.deepEqual(texts, committed.map((c) => c.value).sort());
  t.false(got.some((r) => r.text.startsWith('aborted-')), 'no record of the aborted transaction');
  t.true(got.some((r) => r.text === 'plain-0' && r.key === null && r.partition === 0));
  const bin = got.find((r) => r.partition === 1 && r.key !== null && r.key.equals(Buffer.from([0, 1, 10])));
  t.deepEqual(bin?.value, Buffer.from([255, 10, 0]));
  t.is(got.length, 32);
  // Offsets increase within each partition, and kafkajs (patched) reads the same records.
  for (const p of [0, 1, 2]) {
    const offs = got.filter((r) => r.partition === p).map((r) => Number(r.offset));
    t.deepEqual(offs, [...offs].sort((a, b) => a - b));
  }
  const viaKafkajs = await readCommitted(client, topic!);
  t.deepEqual(compareReadings(topic!, 'kafkajs', viaKafkajs, 'kcat', got), []);
});

test('[broker] kcat does not return short of an open transaction: it times out naming the partition', async (t) => {
  const k = kafka();
  const client = k.client();
  const [topic] = await k.createTopics([{ prefix: 'kcat-open', partitions: 2 }]);
  const tp = client.producer({ transactionalId: k.uniqueName('kcat-open-tx'), idempotent: true, maxInFlightRequests: 1 });
  await tp.connect();
  const tx = await tp.transaction();
  await tx.send({ topic: topic!, messages: [{ partition: 1, value: 'open' }] });
  try {
    await t.throwsAsync(readCommittedWithKcat(k.brokers, topic!, { timeoutMs: 4_000 }), { message: /sentinels of partitions 1 not seen/ });
  } finally {
    await tx.abort();
    await tp.disconnect();
  }
  t.deepEqual(await readCommittedWithKcat(k.brokers, topic!, { timeoutMs: 30_000 }), []);
});
