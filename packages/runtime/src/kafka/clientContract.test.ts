/**
 * The client contract: what the runtime relies on from its Kafka client, pinned against the real
 * broker. Today the client is kafkajs 2.2.4 with the fixes @vltava/runtime applies (kafkajsFixes.ts);
 * a second client would have to pass the same cases (docs/kafkajs-notes.md says what each needs).
 *
 * Each case asserts the behaviour exactly enough to fail on a client that lacks it. The fixed ones
 * fail on upstream kafkajs (run with VLTAVA_KAFKAJS=<upstream kafkajs dir> VLTAVA_KAFKAJS_FIXES=off,
 * see kafkajsUnderTest.test.helper.ts). Topics and the harness admin come from @vltava/kafka-local;
 * every client under test is created from the kafkajs under test.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { readCommittedKcat, useKafka } from '@vltava/kafka-local/testing';
import type { Consumer, IHeaders, Kafka, KafkaMessage, Producer } from 'kafkajs';
import { isFencingError, kafkaErrorType } from './kafkaErrors.js';
import { kafkajs, kafkajsDir, underTest } from './kafkajsUnderTest.test.helper.js';

const kafka = useKafka(test);
const run = promisify(execFile);

test.before((t) => t.log(`client under test: ${underTest}`));

function client(): Kafka {
  return new kafkajs.Kafka({ brokers: kafka().brokers, clientId: kafka().uniqueName('contract'), logLevel: kafkajs.logLevel.NOTHING });
}

async function txProducer(c: Kafka, transactionalId: string): Promise<Producer> {
  const p = c.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  await p.connect();
  await (await p.transaction()).abort(); // initialise (and fence) now, see docs/kafkajs-notes.md §1
  return p;
}

const zero = Buffer.from([0, 0, 0, 0]);

interface Read {
  readonly messages: KafkaMessage[];
  readonly values: string[];
  /** `eachBatch` calls with at least one record. */
  readonly batches: number;
  /** END_BATCH_PROCESS events: [batchSize, lastOffset]. */
  readonly ends: [number, string][];
}

/**
 * Reads one partition read_committed from `from` until the client reports a position >= `end`
 * (a delivered record, or END_BATCH_PROCESS for batches it filtered to nothing).
 */
async function readCommitted(c: Kafka, topic: string, partition: number, from: number, end: number): Promise<Read> {
  const consumer: Consumer = c.consumer({ groupId: kafka().uniqueName('contract-read'), readUncommitted: false, sessionTimeout: 6_000, maxWaitTimeInMs: 200 });
  const messages: KafkaMessage[] = [];
  const ends: [number, string][] = [];
  let batches = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const reached = (offset: string): void => {
    if (Number(offset) + 1 >= end) finish();
  };
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    if (e.payload.topic !== topic || e.payload.partition !== partition) return;
    ends.push([e.payload.batchSize, String(e.payload.lastOffset)]);
    reached(String(e.payload.lastOffset));
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      if (batch.partition !== partition) return;
      if (batch.messages.length > 0) batches++;
      messages.push(...batch.messages);
      for (const m of batch.messages) reached(m.offset);
    },
  });
  consumer.seek({ topic, partition, offset: String(from) });
  const timeout = setTimeout(finish, 30_000);
  await done;
  clearTimeout(timeout);
  await consumer.disconnect();
  return { messages, values: messages.map((m) => m.value?.toString() ?? 'null'), batches, ends };
}

/**
 * The partition's end once `expected` is reached: `commit()`/`abort()` resolve when the coordinator
 * has logged the outcome; the markers (and with them the last stable offset) follow asynchronously.
 */
async function endOffset(topic: string, partition = 0, expected?: number): Promise<number> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const offsets = await kafka().admin.fetchTopicOffsets(topic);
    const high = Number(offsets.find((p) => p.partition === partition)!.high);
    if (expected === undefined || high >= expected || Date.now() > deadline) return high;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('[broker] read_committed: an aborted transaction [a, int32(0), b], then committed [c], delivers only c', async (t) => {
  const [topic] = await kafka().createTopics([{ prefix: 'contract-zero-key' }]);
  const c = client();
  const p = await txProducer(c, kafka().uniqueName('tx'));
  const aborted = await p.transaction();
  for (const [key, value] of [[Buffer.from('a'), 'a'], [zero, 'int32(0)'], [Buffer.from('b'), 'b']] as const) {
    await aborted.send({ topic: topic!, messages: [{ key, value, partition: 0 }] });
  }
  await aborted.abort();
  const committed = await p.transaction();
  await committed.send({ topic: topic!, messages: [{ key: 'c', value: 'c', partition: 0 }] });
  await committed.commit();
  await p.disconnect();

  const end = await endOffset(topic!, 0, 6);
  t.is(end, 6, 'a, int32(0), b, abort marker, c, commit marker');
  const got = await readCommitted(c, topic!, 0, 0, end);
  t.deepEqual(got.values, ['c']);
});

test('[broker] read_committed: interleaved and overlapping aborted transactions with binary keys, read from the start and from the middle', async (t) => {
  const [topic] = await kafka().createTopics([{ prefix: 'contract-interleaved' }]);
  const c = client();
  const [p1, p2, p3] = await Promise.all([1, 2, 3].map((i) => txProducer(c, kafka().uniqueName(`tx${i}`))));
  const [t1, t2, t3] = await Promise.all([p1!.transaction(), p2!.transaction(), p3!.transaction()]);
  const send = (tx: typeof t1, key: Buffer, value: string) => tx.send({ topic: topic!, messages: [{ key, value, partition: 0 }] });
  await send(t1, Buffer.from('a1'), 'a1'); // 0  (aborted 1)
  await send(t2, Buffer.from([0xff, 0x00]), 'b1'); // 1  (aborted 2)
  await send(t2, zero, 'b2'); // 2
  await send(t1, zero, 'a2'); // 3
  await send(t3, zero, 'c1'); // 4  (committed, between the aborted ones)
  await t3.commit(); // 5
  await send(t1, Buffer.from('a3'), 'a3'); // 6
  await send(t2, Buffer.from([0, 0, 0, 1]), 'b3'); // 7  (the key of a COMMIT marker)
  await t1.abort(); // 8
  await t2.abort(); // 9
  const t1b = await p1!.transaction();
  await send(t1b, zero, 'd1'); // 10: producer 1's next transaction, committed
  await t1b.commit(); // 11
  await Promise.all([p1!.disconnect(), p2!.disconnect(), p3!.disconnect()]);

  const end = await endOffset(topic!, 0, 12);
  t.is(end, 12);
  const all = await readCommitted(c, topic!, 0, 0, end);
  t.deepEqual(all.values, ['c1', 'd1'], 'from the start');
  t.deepEqual(all.messages.map((m) => m.key), [zero, zero], 'binary keys intact');
  // From offset 2, both aborted transactions began before the first fetched record.
  const middle = await readCommitted(c, topic!, 0, 2, end);
  t.deepEqual(middle.values, ['c1', 'd1'], 'from the middle');
});

test('[broker] marker-only tails: the client moves past markers and aborted records without delivering them, and says so', async (t) => {
  const [topic] = await kafka().createTopics([{ prefix: 'contract-markers' }]);
  const c = client();
  const p = await txProducer(c, kafka().uniqueName('tx'));
  const ok = await p.transaction();
  await ok.send({ topic: topic!, messages: [{ key: 'a', value: 'a', partition: 0 }] }); // 0, marker 1
  await ok.commit();
  const bad = await p.transaction();
  await bad.send({ topic: topic!, messages: [{ key: 'x', value: 'x', partition: 0 }] }); // 2, marker 3
  await bad.abort();
  await p.disconnect();
  const end = await endOffset(topic!, 0, 4);
  t.is(end, 4);

  const all = await readCommitted(c, topic!, 0, 0, end);
  t.deepEqual(all.values, ['a']);
  t.true(all.ends.some(([, last]) => Number(last) === end - 1), `the reported position reaches the tail: ${JSON.stringify(all.ends)}`);

  // From the commit marker: nothing to deliver at all, and the runtime must still learn the position.
  const tail = await readCommitted(c, topic!, 0, 1, end);
  t.deepEqual(tail.values, []);
  t.is(tail.batches, 0, 'no eachBatch call for a batch of markers and aborted records');
  t.deepEqual(tail.ends.at(-1), [0, String(end - 1)], 'END_BATCH_PROCESS with batchSize 0 and the last offset');
});

test('[broker] fencing: after a new producer with the same transactional id initialises, the zombie fails to send and to commit with a fencing error', async (t) => {
  const [topic] = await kafka().createTopics([{ prefix: 'contract-fence' }]);
  const c = client();
  const id = kafka().uniqueName('tx-fence');
  const zombie = await txProducer(c, id);
  const tx = await zombie.transaction();
  await tx.send({ topic: topic!, messages: [{ key: 'z', value: 'before', partition: 0 }] });
  const owner = await txProducer(c, id); // bumps the epoch, aborts the zombie's transaction

  const sendErr = await t.throwsAsync(tx.send({ topic: topic!, messages: [{ key: 'z', value: 'after', partition: 0 }] }));
  t.true(isFencingError(sendErr), `send: ${kafkaErrorType(sendErr)} ${sendErr?.message}`);
  const commitErr = await t.throwsAsync(tx.commit());
  t.true(isFencingError(commitErr), `commit: ${kafkaErrorType(commitErr)} ${commitErr?.message}`);

  const ownTx = await owner.transaction();
  await ownTx.send({ topic: topic!, messages: [{ key: 'o', value: 'owner', partition: 0 }] });
  await ownTx.commit();
  await Promise.all([zombie.disconnect(), owner.disconnect()]);
  const end = await endOffset(topic!, 0, 4); // before (aborted), its abort marker, owner, commit marker
  t.deepEqual((await readCommitted(c, topic!, 0, 0, end)).values, ['owner'], 'nothing of the zombie is committed');
});

/** A child process that commits offset 5 for `group`, then sends offset 9 in a new transaction and dies (SIGKILL) before it ends. */
async function crashWithPendingOffsets(transactionalId: string, group: string, topic: string): Promise<void> {
  const script = `
    import { createRequire } from 'node:module';
    const { Kafka, logLevel } = createRequire(import.meta.url)(${JSON.stringify(kafkajsDir)});
    const kafka = new Kafka({ brokers: ${JSON.stringify(kafka().brokers)}, logLevel: logLevel.NOTHING });
    const p = kafka.producer({ transactionalId: ${JSON.stringify(transactionalId)}, idempotent: true, maxInFlightRequests: 1 });
    await p.connect();
    const offsets = (offset) => ({ consumerGroupId: ${JSON.stringify(group)}, topics: [{ topic: ${JSON.stringify(topic)}, partitions: [{ partition: 0, offset }] }] });
    const t1 = await p.transaction();
    await t1.sendOffsets(offsets('5'));
    await t1.commit();
    const t2 = await p.transaction();
    for (let i = 0; ; i++) {
      // CONCURRENT_TRANSACTIONS while the coordinator still writes t1's markers (kafkajs does not retry it here)
      try { await t2.sendOffsets(offsets('9')); break; } catch (e) { if (e.type !== 'CONCURRENT_TRANSACTIONS' || i > 50) throw e; await new Promise((r) => setTimeout(r, 50)); }
    }
    process.stdout.write('pending\\n');
    process.kill(process.pid, 'SIGKILL');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  if (signal !== 'SIGKILL' || !out.includes('pending')) throw new Error(`the crashing producer did not reach its pending offsets: exit ${code} ${signal}, ${out} ${err.slice(-800)}`);
}

test('[broker] pending transactional offsets stay invisible to fetchOffsets after a producer crash, until a producer with the same id ends the transaction', async (t) => {
  const [topic] = await kafka().createTopics([{ prefix: 'contract-pending' }]);
  const c = client();
  const admin = c.admin();
  await admin.connect();
  const group = kafka().uniqueName('contract-group');
  const id = kafka().uniqueName('tx-crash');
  const committed = async (awaitValue?: string): Promise<string | undefined> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const offset = (await admin.fetchOffsets({ groupId: group, topics: [topic!] }))[0]?.partitions.find((p) => p.partition === 0)?.offset;
      if (awaitValue === undefined || offset === awaitValue || Date.now() > deadline) return offset;
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  await crashWithPendingOffsets(id, group, topic!);
  t.is(await committed('5'), '5', 'the crashed transaction\'s offset 9 is pending: fetchOffsets returns the last committed one');
  const next = await txProducer(c, id); // InitProducerId aborts the crashed transaction before it returns
  t.is(await committed(), '5', 'aborted: still 5');
  const tx = await next.transaction();
  await tx.sendOffsets({ consumerGroupId: group, topics: [{ topic: topic!, partitions: [{ partition: 0, offset: '7' }] }] });
  t.is(await committed(), '5', 'pending offsets of a live transaction are invisible too');
  await tx.commit();
  t.is(await committed('7'), '7', 'visible once committed (shortly after commit() resolves: the markers follow it)');
  await next.disconnect();
  await admin.disconnect();
});

test('[broker] an empty partition with a non-zero log start (after deleteRecords): offsets, and a read from the beginning starts at the log start', async (t) => {
  const [topic] = await kafka().createTopics([{ prefix: 'contract-logstart' }]);
  const c = client();
  const p = c.producer({ idempotent: true, maxInFlightRequests: 1 });
  await p.connect();
  await p.send({ topic: topic!, messages: ['a', 'b', 'c'].map((v) => ({ key: v, value: v, partition: 0 })) });
  await p.disconnect();
  const admin = c.admin();
  await admin.connect();
  await admin.fetchTopicOffsets(topic!); // kafkajs' deleteTopicRecords does not load the topic's metadata itself
  await admin.deleteTopicRecords({ topic: topic!, partitions: [{ partition: 0, offset: '3' }] });
  t.deepEqual(
    (await admin.fetchTopicOffsets(topic!)).map(({ partition, low, high }) => ({ partition, low, high })),
    [{ partition: 0, low: '3', high: '3' }],
    'empty, log start 3',
  );
  await p.connect();
  await p.send({ topic: topic!, messages: [{ key: 'd', value: 'd', partition: 0 }] });
  await p.disconnect();
  const consumer = c.consumer({ groupId: kafka().uniqueName('contract-logstart'), readUncommitted: false, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic!], fromBeginning: true });
  const first = new Promise<KafkaMessage>((resolve) => void consumer.run({ eachMessage: async ({ message }) => resolve(message) }));
  const m = await first;
  t.deepEqual([m.offset, m.value?.toString()], ['3', 'd'], 'fromBeginning resolves to the log start, not 0');
  await consumer.disconnect();
  await admin.disconnect();
});

test('[broker] a header with a null value is sent and arrives null (kcat -J and the client)', async (t) => {
  const [topic] = await kafka().createTopics([{ prefix: 'contract-null-header' }]);
  const c = client();
  const p = await txProducer(c, kafka().uniqueName('tx-null-header'));
  const headers: IHeaders = { nothing: null as unknown as undefined, text: 'x', empty: '' };
  try {
    const tx = await p.transaction();
    await tx.send({ topic: topic!, messages: [{ key: 'k', value: 'v', partition: 0, headers }] });
    await tx.commit();
  } finally {
    await p.disconnect();
  }

  const { stdout } = await run('kcat', ['-C', '-b', kafka().brokers.join(','), '-t', topic!, '-o', 'beginning', '-e', '-q', '-J', '-X', 'isolation.level=read_committed']);
  const records = stdout.trim().split('\n').map((l) => JSON.parse(l) as { headers?: (string | null)[]; payload: string });
  t.deepEqual(records.map((r) => [r.payload, r.headers]), [['v', ['nothing', null, 'text', 'x', 'empty', '']]], 'kcat sees a null header value');

  const got = await readCommitted(c, topic!, 0, 0, await endOffset(topic!, 0, 2));
  t.deepEqual(got.messages[0]?.headers, { nothing: null, text: Buffer.from('x'), empty: Buffer.from('') });
});

test('[broker] large keys: a 512 KiB key with an explicit partition is sent without hashing it and arrives intact', async (t) => {
  const [topic] = await kafka().createTopics([{ prefix: 'contract-large-key', partitions: 2 }]);
  const c = client();
  const p = c.producer({ idempotent: true, maxInFlightRequests: 1 }); // the default partitioner, as the runtime's producers
  await p.connect();
  const key = Buffer.alloc(512 * 1024, 7);
  key.write('large-key');
  const started = Date.now();
  await p.send({ topic: topic!, messages: [{ key, value: 'v', partition: 1 }] });
  const ms = Date.now() - started;
  await p.disconnect();
  // kafkajs' murmur2 of a 512 KiB key blocks the event loop for about a minute (docs/kafkajs-notes.md):
  // an explicit partition must skip it.
  t.true(ms < 10_000, `send took ${ms} ms`);
  const got = await readCommitted(c, topic!, 1, 0, await endOffset(topic!, 1, 1));
  t.is(got.messages.length, 1);
  t.true(got.messages[0]!.key!.equals(key), 'the key arrives intact in partition 1');
});

test('[broker] admin.fetchTopicOffsets while fetchTopicMetadata runs on the same admin: correct offsets, never a TypeError', async (t) => {
  const [a, b] = await kafka().createTopics([{ prefix: 'contract-race-a', partitions: 2 }, { prefix: 'contract-race-b', partitions: 2 }]);
  const admin = client().admin();
  await admin.connect();
  let stop = false;
  const loop = (async () => {
    while (!stop) await admin.fetchTopicMetadata({ topics: [a!] });
  })();
  const errors: string[] = [];
  for (let i = 0; i < 30; i++) {
    try {
      const offsets = await admin.fetchTopicOffsets(b!);
      if (offsets.length !== 2) errors.push(`${offsets.length} partitions`);
    } catch (e) {
      errors.push(`${(e as Error).name}: ${(e as Error).message}`);
    }
  }
  stop = true;
  await loop;
  await admin.disconnect();
  t.deepEqual(errors, [], 'upstream kafkajs throws "TypeError: Cannot destructure property \'partitions\' of \'low.pop(...)\'" here');
});

test('[broker] produce encoding: a mixed record set (binary, empty, null and 100 KiB keys and values, headers, out-of-order and old timestamps) reads back exactly (kcat and the client)', async (t) => {
  // The runtime's produce path encodes with its own encoder (fix 5, recordBatchEncoder.ts): the
  // broker must accept its batches (CRC, sizes) and every field must come back as sent.
  const [topic] = await kafka().createTopics([{ prefix: 'contract-encoding', partitions: 2 }]);
  const c = client();
  const p = await txProducer(c, kafka().uniqueName('tx-encoding'));
  let seed = 11;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
    return (seed >>> 12) % n;
  };
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => rand(256)));
  const data = (i: number): Buffer | string | null => (i % 250 === 7 ? bytes(100 * 1024) : [null, Buffer.alloc(0), '', bytes(8), `w${i}`, bytes(1 + rand(300)), 'é€𝄞'][rand(7)]!);
  const base = 1_764_000_000_000;
  const sent = Array.from({ length: 1500 }, (_, i) => {
    const headers: IHeaders | undefined = [undefined, {}, { src: 'x', bin: bytes(3) }, { list: ['a', 'b'], nothing: null as unknown as undefined }][rand(4)];
    const timestamp = [String(base + rand(10_000)), String(base - rand(10_000_000)), '1000', undefined][rand(4)];
    return { key: data(i), value: data(i + 1), partition: rand(2), ...(headers ? { headers } : {}), ...(timestamp !== undefined ? { timestamp } : {}) };
  });
  const before = Date.now();
  try {
    const tx = await p.transaction();
    for (let i = 0; i < sent.length; i += 500) await tx.send({ topic: topic!, messages: sent.slice(i, i + 500) });
    await tx.commit();
  } finally {
    await p.disconnect();
  }
  const after = Date.now();
  const asBuffer = (v: Buffer | string | null): Buffer | null => (v === null ? null : Buffer.from(v));
  const expected = [0, 1].map((partition) => sent.filter((m) => m.partition === partition));
  t.true(expected[0]!.length > 500 && expected[1]!.length > 500, 'both partitions get records');

  // kcat: keys, values, partitions, offsets and timestamps.
  const kcat = await readCommittedKcat(kafka().brokers, topic!);
  t.is(kcat.length, sent.length);
  for (const partition of [0, 1]) {
    const got = kcat.filter((r) => r.partition === partition);
    t.is(got.length, expected[partition]!.length);
    got.forEach((r, i) => {
      const m = expected[partition]![i]!;
      const what = `partition ${partition} offset ${r.offset}`;
      t.is(r.offset, String(i), what);
      t.deepEqual(r.key, asBuffer(m.key), `${what}: key`);
      t.deepEqual(r.value, asBuffer(m.value), `${what}: value`);
      if (m.timestamp !== undefined) t.is(r.timestamp, Number(m.timestamp), `${what}: timestamp`);
      else t.true(r.timestamp >= before && r.timestamp <= after, `${what}: timestamp ${r.timestamp} is the send time`);
    });
  }
  // The client: headers (and the rest once more).
  for (const partition of [0, 1]) {
    await endOffset(topic!, partition, expected[partition]!.length + 1); // the commit marker is written
    const got = await readCommitted(c, topic!, partition, 0, expected[partition]!.length);
    t.is(got.messages.length, expected[partition]!.length);
    got.messages.forEach((r, i) => {
      const m = expected[partition]![i]!;
      const h = Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, Array.isArray(v) ? v.map((x) => asBuffer(x as string)) : asBuffer((v ?? null) as Buffer | string | null)]));
      t.deepEqual([r.key, r.value, r.headers], [asBuffer(m.key), asBuffer(m.value), h], `partition ${partition} offset ${r.offset}`);
    });
  }
});
