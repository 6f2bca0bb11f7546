/** The fault proxy: its response rewrites, and kafkajs / kcat through it against the real broker. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { useKafka } from '@vltava/kafka-local/testing';
import { logLevel, Kafka } from 'kafkajs';
import { ApiKey, COMMIT_APIS, FaultProxy, rewriteFindCoordinator, rewriteMetadata } from './faultProxy.js';
import { readCommittedWithKcat } from './kcatReader.js';

const kafka = useKafka(test);

// Hand-written encoders (separate from the proxy's, so a shared mistake cannot pass).
const i16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const i32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const s16 = (s: string | null) => (s === null ? i16(-1) : Buffer.concat([i16(Buffer.byteLength(s)), Buffer.from(s)]));
const cs = (s: string | null) => (s === null ? Buffer.from([0]) : Buffer.concat([Buffer.from([Buffer.byteLength(s) + 1]), Buffer.from(s)]));
const map = async (host: string, port: number) => ({ host: 'proxy', port: port + 1000 });

test('Metadata v1 (classic) and v12 (flexible) responses: broker addresses replaced, everything else kept', async (t) => {
  const rest = Buffer.from([1, 2, 3, 4, 5]);
  const v1 = Buffer.concat([i32(77), i32(2), i32(1), s16('b1'), i32(9092), s16('r1'), i32(2), s16('b2'), i32(9093), s16(null), rest]);
  const want1 = Buffer.concat([i32(77), i32(2), i32(1), s16('proxy'), i32(10092), s16('r1'), i32(2), s16('proxy'), i32(10093), s16(null), rest]);
  t.deepEqual(await rewriteMetadata(v1, 1, map), want1);
  // v12: header tagged fields, throttle, compact array of brokers each with tagged fields (one here).
  const tag = Buffer.from([1, 0, 2, 0xaa, 0xbb]);
  const v12 = Buffer.concat([i32(78), Buffer.from([0]), i32(0), Buffer.from([2]), i32(1), cs('broker-1'), i32(9092), cs(null), tag, rest]);
  const want12 = Buffer.concat([i32(78), Buffer.from([0]), i32(0), Buffer.from([2]), i32(1), cs('proxy'), i32(10092), cs(null), tag, rest]);
  t.deepEqual(await rewriteMetadata(v12, 12, map), want12);
});

test('FindCoordinator v2 (one coordinator) and v4 (batched) responses are rewritten; an error answer is kept', async (t) => {
  const v2 = Buffer.concat([i32(5), i32(0), i16(0), s16(null), i32(1), s16('b1'), i32(9092)]);
  t.deepEqual(await rewriteFindCoordinator(v2, 2, map), Buffer.concat([i32(5), i32(0), i16(0), s16(null), i32(1), s16('proxy'), i32(10092)]));
  const err = Buffer.concat([i32(5), i32(0), i16(15), s16('not available'), i32(-1), s16(''), i32(-1)]);
  t.deepEqual(await rewriteFindCoordinator(err, 2, map), err);
  const entry = (key: string, host: string, port: number) => Buffer.concat([cs(key), i32(1), cs(host), i32(port), i16(0), cs(null), Buffer.from([0])]);
  const v4 = Buffer.concat([i32(6), Buffer.from([0]), i32(0), Buffer.from([3]), entry('g1', 'b1', 9092), entry('g2', 'b1', 9092), Buffer.from([0])]);
  const want4 = Buffer.concat([i32(6), Buffer.from([0]), i32(0), Buffer.from([3]), entry('g1', 'proxy', 10092), entry('g2', 'proxy', 10092), Buffer.from([0])]);
  t.deepEqual(await rewriteFindCoordinator(v4, 4, map), want4);
  await t.throwsAsync(rewriteMetadata(v1Truncated(), 1, map));
});

const v1Truncated = () => Buffer.concat([i32(77), i32(1), i32(1), i16(10), Buffer.from('ab')]);

const through = (proxy: FaultProxy, clientId: string) => new Kafka({ clientId, brokers: [proxy.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100 } });

test('[broker] kafkajs and kcat (librdkafka) see the proxy as the broker: Metadata and FindCoordinator rewritten', async (t) => {
  const k = kafka();
  const proxy = await FaultProxy.start({ upstream: k.brokers[0]! });
  try {
    const admin = through(proxy, 'proxy-meta').admin();
    await admin.connect();
    const cluster = await admin.describeCluster();
    t.true(cluster.brokers.length >= 1);
    for (const b of cluster.brokers) t.is(`${b.host}:${b.port}`, proxy.bootstrap.replace(/:\d+$/, `:${(await proxy.ports()).get(k.brokers[0]!)}`));
    await admin.describeGroups([k.uniqueName('g')]); // FindCoordinator
    await admin.disconnect();
    t.true(proxy.stats.metadataRewrites >= 1);
    t.true(proxy.stats.coordinatorRewrites >= 1);
    // Asynchronously: the proxy runs in this process.
    const r = await promisify(execFile)('kcat', ['-L', '-J', '-b', proxy.bootstrap], { encoding: 'utf8', timeout: 20_000 });
    const meta = JSON.parse(r.stdout) as { brokers: { name: string }[] };
    t.true(meta.brokers.length >= 1);
    for (const b of meta.brokers) t.is(b.name, `127.0.0.1:${(await proxy.ports()).get(k.brokers[0]!)}`);
  } finally {
    await proxy.close();
  }
});

test('[broker] a producer and a consumer group through the proxy survive cuts and a reset of every connection', async (t) => {
  const k = kafka();
  const [topic] = await k.createTopics([{ prefix: 'proxy-cut', partitions: 2 }]);
  const proxy = await FaultProxy.start({ upstream: k.brokers[0]! });
  const client = through(proxy, 'proxy-cut');
  const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
  const consumer = client.consumer({ groupId: k.uniqueName('proxy-cut-g'), sessionTimeout: 10_000, heartbeatInterval: 500 });
  try {
    await producer.connect();
    await consumer.connect();
    await consumer.subscribe({ topic: topic!, fromBeginning: true });
    const seen = new Set<string>();
    const all = Array.from({ length: 300 }, (_, i) => `v${i}`);
    let onSeen = (): void => undefined;
    void consumer.run({
      eachMessage: async ({ message }) => {
        seen.add(message.value!.toString());
        onSeen();
      },
    });
    const seenAtLeast = (n: number) => new Promise<void>((resolve) => {
      onSeen = () => seen.size >= n && resolve();
      onSeen();
    });
    for (let round = 0; round < 3; round++) {
      const batch = all.slice(round * 100, round * 100 + 100);
      await producer.send({ topic: topic!, messages: batch.map((value) => ({ value })) });
      await seenAtLeast((round + 1) * 100);
      const hit = round === 1 ? proxy.reset() : proxy.cut();
      t.true(hit >= 2, `round ${round}: ${hit} connections hit (producer and consumer at least)`);
    }
    await producer.send({ topic: topic!, messages: [{ value: 'after' }] });
    await seenAtLeast(301);
    t.deepEqual([...seen].sort(), [...all, 'after'].sort());
    t.true(proxy.stats.accepted > 4, 'clients reconnected through the proxy');
    t.deepEqual(proxy.faults.map((f) => f.kind), ['cut', 'reset', 'cut']);
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
    await proxy.close();
  }
  // Nothing lost or doubled by the producer's retries (kcat, directly on the broker).
  const onBroker = await readCommittedWithKcat(k.brokers, topic!);
  t.is(onBroker.length, 301);
});

test('[broker] a stall holds a send back until it ends, then it completes', async (t) => {
  const k = kafka();
  const [topic] = await k.createTopics([{ prefix: 'proxy-stall', partitions: 1 }]);
  const proxy = await FaultProxy.start({ upstream: k.brokers[0]! });
  const producer = through(proxy, 'proxy-stall').producer({ idempotent: true, maxInFlightRequests: 1 });
  try {
    await producer.connect();
    await producer.send({ topic: topic!, messages: [{ value: 'warm-up' }] });
    t.true(proxy.stall(2_000) >= 1);
    const stallEnds = Date.now() + 2_000;
    let sentAt = 0;
    await producer.send({ topic: topic!, messages: [{ value: 'stalled' }] }).then(() => (sentAt = Date.now()));
    t.true(sentAt >= stallEnds - 50, `the send completed ${stallEnds - sentAt} ms before the stall ended`);
  } finally {
    await producer.disconnect();
    await proxy.close();
  }
  t.deepEqual((await readCommittedWithKcat(k.brokers, topic!)).map((r) => r.text), ['warm-up', 'stalled']);
});

test('[broker] a reset mid-request is observed by the client (ECONNRESET); a transaction cut at EndTxn is committed at most once', async (t) => {
  const k = kafka();
  const [topic] = await k.createTopics([{ prefix: 'proxy-reset', partitions: 1 }]);
  const proxy = await FaultProxy.start({ upstream: k.brokers[0]! });
  const producer = through(proxy, 'proxy-reset').producer({ retry: { retries: 0 } });
  const tp = through(proxy, 'proxy-reset-tx').producer({ transactionalId: k.uniqueName('proxy-tx'), idempotent: true, maxInFlightRequests: 1 });
  let committed = false;
  try {
    await producer.connect();
    const fault = proxy.faultOnRequest([ApiKey.Produce], 'reset', { timeoutMs: 10_000 });
    const err = await t.throwsAsync(producer.send({ topic: topic!, messages: [{ value: 'x' }] }));
    t.regex(`${err?.message} ${(err as { cause?: Error } | undefined)?.cause?.message ?? ''}`, /ECONNRESET|Connection error/);
    t.is((await fault).kind, 'reset');
    t.is((await fault).apiKey, ApiKey.Produce);

    await tp.connect();
    const cut = proxy.faultOnRequest([ApiKey.EndTxn], 'cut', { timeoutMs: 10_000 });
    const tx = await tp.transaction();
    await tx.send({ topic: topic!, messages: [{ value: 'in-tx' }] });
    committed = await tx.commit().then(
      () => true,
      async () => (await tx.abort().catch(() => undefined), false),
    );
    t.log(`the commit cut at EndTxn ${committed ? 'succeeded on retry' : 'failed'}`);
    t.true(COMMIT_APIS.includes((await cut).apiKey!));
  } finally {
    await producer.disconnect();
    await tp.disconnect().catch(() => undefined);
    await proxy.close();
  }
  const texts = (await readCommittedWithKcat(k.brokers, topic!)).map((r) => r.text);
  // Atomic whatever the client saw: once or not at all. A failed commit is ambiguous: the broker may
  // have committed it (EndTxn arrived, its answer was cut), which is what a runtime must survive.
  const copies = texts.filter((x) => x === 'in-tx').length;
  t.log(`broker side: ${copies} cop${copies === 1 ? 'y' : 'ies'} committed (client saw ${committed ? 'success' : 'failure'})`);
  t.true(copies <= 1);
  if (committed) t.is(copies, 1);
});
