/**
 * The kafkajs fixes the runtime applies itself (kafkajsFixes.ts), in-process on crafted protocol
 * bytes. Every test runs its input twice: on an upstream kafkajs 2.2.4 without the fixes (a fresh
 * copy with pnpm's patch reversed, as `npm install` gets it), where it must show the bug, proving the
 * input reaches it; and on another fresh copy with only the runtime's fixes applied, where it must
 * not. The real-broker versions are in clientContract.test.ts.
 *
 * With VLTAVA_KAFKAJS_FIXES=off the "fixed" copies stay unfixed and every test here fails.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import test from 'ava';
import {
  applyKafkajsFixes,
  checkKafkajsFixes,
  consumeFetchResponse,
  encodeFetchResponse,
  guardAdmin,
  KafkajsFixMissingError,
  KafkaMetadataRaceError,
  METADATA_RACE_ATTEMPTS,
  refuseWithoutFixes,
  requireKafkajsFixes,
  type CraftedBatch,
} from './kafkajsFixes.js';
import { upstreamKafkajsCopy } from './kafkajsUnderTest.test.helper.js';

const unfixed = upstreamKafkajsCopy();
const fixed = upstreamKafkajsCopy();
applyKafkajsFixes({ kafkajsDir: fixed });

const v = (s: string): Buffer => Buffer.from(s);
const INT32_ZERO = Buffer.from([0, 0, 0, 0]);
const data = (base: number, producerId: number, value: string, key: Buffer = v('k')): CraftedBatch => ({ base, producerId, records: [{ key, value: v(value) }] });
const marker = (base: number, producerId: number, kind: 'abort' | 'commit'): CraftedBatch => ({ base, producerId, control: kind });

/** The values a kafkajs consumer of `kafkajsDir` delivers from one crafted fetch. */
async function read(kafkajsDir: string, spec: Parameters<typeof encodeFetchResponse>[0], fetchedOffset: number): Promise<string[]> {
  const msgs = await consumeFetchResponse(encodeFetchResponse(spec, { kafkajsDir }), fetchedOffset, { kafkajsDir });
  return msgs.map((m) => m.value?.toString() ?? 'null');
}

test('read_committed: a data record whose key is four zero bytes (int32 0) does not end its aborted transaction', async (t) => {
  // Aborted [a, int32(0), b], then committed [c]: the reproduction.
  const spec = {
    topic: 't',
    aborted: [{ producerId: 1, firstOffset: 0 }],
    batches: [data(0, 1, 'a'), data(1, 1, 'zero', INT32_ZERO), data(2, 1, 'b'), marker(3, 1, 'abort'), data(4, 2, 'c'), marker(5, 2, 'commit')],
  };
  t.deepEqual(await read(unfixed, spec, 0), ['zero', 'b', 'c'], 'upstream kafkajs takes the int32(0) key for an abort marker');
  t.deepEqual(await read(fixed, spec, 0), ['c']);
});

test('read_committed: aborted records are dropped in every fetch that has them, between fetches that have none (those skip the copy of their array)', async (t) => {
  const clean = { topic: 't', aborted: [], batches: [data(0, 1, 'a'), marker(1, 1, 'commit')] };
  const dirty = { topic: 't', aborted: [{ producerId: 3, firstOffset: 10 }], batches: [data(10, 3, 'x'), data(11, 3, 'y'), marker(12, 3, 'abort'), data(13, 4, 'ok'), marker(14, 4, 'commit')] };
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 5; i++) t.deepEqual(await read(fixed, clean, 0), ['a']);
    t.deepEqual(await read(fixed, dirty, 10), ['ok'], `round ${round}: the aborted records are dropped`);
  }
  // the same aborted records in two fetches (a re-fetch after a seek): dropped both times
  t.deepEqual(await read(fixed, dirty, 10), ['ok']);
  t.deepEqual(await read(fixed, clean, 0), ['a']);
  t.deepEqual(await read(fixed, dirty, 10), ['ok']);
});

test('read_committed: every aborted transaction that starts before a record is active, not one per record', async (t) => {
  // Two tasks' transactions (producers A=1, B=2) aborted together, both begun before the fetch at 110.
  const spec = {
    topic: 't',
    aborted: [
      { producerId: 1, firstOffset: 100 },
      { producerId: 2, firstOffset: 105 },
    ],
    batches: [
      data(110, 2, 'b1'), // aborted B
      data(111, 1, 'a1'), // aborted A
      data(112, 3, 'c1'), // committed C
      marker(113, 1, 'abort'),
      data(114, 1, 'a2'), // A's next transaction, committed
      data(115, 2, 'b2'), // aborted B
      marker(116, 2, 'abort'),
      marker(117, 3, 'commit'),
      marker(118, 1, 'commit'),
    ],
  };
  t.deepEqual(await read(unfixed, spec, 110), ['b1', 'c1', 'a2'], 'upstream kafkajs activates one aborted transaction per record: B is activated too late');
  t.deepEqual(await read(fixed, spec, 110), ['c1', 'a2']);
});

test('read_committed: aborted transactions listed out of offset order are all applied', async (t) => {
  const spec = {
    topic: 't',
    aborted: [
      { producerId: 2, firstOffset: 3 },
      { producerId: 1, firstOffset: 0 },
    ],
    batches: [data(0, 1, 'a1'), data(1, 1, 'a2'), marker(2, 1, 'abort'), data(3, 2, 'b1'), marker(4, 2, 'abort'), data(5, 3, 'c'), marker(6, 3, 'commit')],
  };
  t.deepEqual(await read(unfixed, spec, 0), ['a1', 'a2', 'c'], 'upstream kafkajs waits for the first listed transaction (offset 3) before activating any');
  t.deepEqual(await read(fixed, spec, 0), ['c']);
});

test('read_committed (guard): committed records, the next transaction of an aborted producer, non-transactional int32(0) keys and records before the fetch offset', async (t) => {
  const spec = {
    topic: 't',
    aborted: [{ producerId: 1, firstOffset: 2 }],
    batches: [
      data(0, 1, 'before-fetch'),
      marker(1, 1, 'commit'),
      data(2, 1, 'aborted', INT32_ZERO),
      marker(3, 1, 'abort'),
      data(4, 1, 'next', INT32_ZERO),
      marker(5, 1, 'commit'),
      data(6, -1, 'plain', INT32_ZERO),
    ],
  };
  // Not a test of a fix (upstream gets this right): it pins that the fix does not over-filter.
  t.deepEqual(await read(fixed, spec, 1), ['next', 'plain']);
  t.deepEqual(await read(fixed, spec, 0), ['before-fetch', 'next', 'plain']);
});

/** Encodes a produce request with the live protocol table and decodes its record batch back. */
async function produceAndDecode(kafkajsDir: string, version: number, headers: Record<string, unknown>): Promise<Record<string, unknown>> {
  const req = createRequire(path.join(kafkajsDir, 'package.json'));
  const produce = req(path.join(kafkajsDir, 'src/protocol/requests/produce/index.js'));
  const Decoder = req(path.join(kafkajsDir, 'src/protocol/decoder.js'));
  const RecordBatchDecoder = req(path.join(kafkajsDir, 'src/protocol/recordBatch/v0/decoder.js'));
  const { request } = produce.protocol({ version })({
    acks: -1,
    timeout: 1000,
    compression: 0,
    topicData: [{ topic: 't', partitions: [{ partition: 0, firstSequence: 0, messages: [{ key: 'k', value: 'v', headers }] }] }],
  });
  const d = new Decoder((await request.encode()).buffer);
  d.readString(); // transactional id
  d.readInt16(); // acks
  d.readInt32(); // timeout
  d.readInt32(); // topics
  d.readString(); // topic
  d.readInt32(); // partitions
  d.readInt32(); // partition
  d.readInt32(); // record set size
  const batch = await RecordBatchDecoder(d);
  return batch.records[0].headers;
}

test('a header with a null value is encoded as length -1 (every produce version kafkajs speaks)', async (t) => {
  for (const version of [3, 4, 5, 6, 7]) {
    const err = await t.throwsAsync(produceAndDecode(unfixed, version, { h: null }));
    t.regex(err?.message ?? '', /must be of type string/, `upstream kafkajs throws on produce v${version}`);
    t.deepEqual(await produceAndDecode(fixed, version, { h: null, s: 'x', list: ['a', null] }), { h: null, s: Buffer.from('x'), list: [Buffer.from('a'), null] });
  }
  t.deepEqual(await produceAndDecode(fixed, 7, { u: undefined }), { u: null }, 'undefined is sent as null too');
});

test('the self-check fails on upstream kafkajs and passes with the fixes, in-process', async (t) => {
  const before = await checkKafkajsFixes({ kafkajsDir: unfixed });
  t.false(before.ok);
  const rc = before.checks.find((c) => c.name === 'read-committed')!;
  t.false(rc.ok);
  t.regex(rc.detail, /read_committed as \[x, zero, b, c, d, e\]/);
  t.false(before.checks.find((c) => c.name === 'null-header-values')!.ok);
  t.false(before.checks.find((c) => c.name === 'fast-produce-encoder')!.ok);
  t.false(before.checks.find((c) => c.name === 'fast-fetch-decoder')!.ok);

  const started = performance.now();
  const after = await checkKafkajsFixes({ kafkajsDir: fixed });
  t.log(`self-check took ${(performance.now() - started).toFixed(1)} ms`);
  t.deepEqual(
    after.checks.map((c) => [c.name, c.ok]),
    [
      ['read-committed', true],
      ['null-header-values', true],
      ['fast-produce-encoder', true],
      ['fast-fetch-decoder', true],
      ['producer-grouping', true],
      ['admin-topic-offsets', true],
    ],
    JSON.stringify(after.checks, null, 1),
  );
});

test('exactly-once refuses a kafkajs without the read_committed fix, with a clear error; at-least-once does not', async (t) => {
  const report = await checkKafkajsFixes({ kafkajsDir: unfixed });
  const err = t.throws(() => refuseWithoutFixes('exactly-once', report));
  t.true(err instanceof KafkajsFixMissingError);
  t.regex(err!.message, /Refusing to run exactly-once on kafkajs 2\.2\.4 .*read-committed: .*aborted transactions/);
  t.false((err as KafkajsFixMissingError).retriable);
  t.notThrows(() => refuseWithoutFixes('at-least-once', report));
  t.notThrows(() => refuseWithoutFixes('exactly-once', { ...report, checks: report.checks.filter((c) => c.requiredFor !== 'exactly-once') }));
  // The runtime's own kafkajs (the one KafkaStreams uses) passes.
  const own = await requireKafkajsFixes('exactly-once');
  t.true(own.checks.find((c) => c.name === 'read-committed')!.ok);
});

test('admin.fetchTopicOffsets: the metadata race TypeError is retried, then becomes a retriable KafkaMetadataRaceError', async (t) => {
  const race = (): never => {
    throw new TypeError("Cannot destructure property 'partitions' of 'low.pop(...)' as it is undefined.");
  };
  let calls = 0;
  const flaky = guardAdmin({
    fetchTopicOffsets: async (topic: string) => (++calls < 3 ? race() : [{ partition: 0, offset: '5', high: '5', low: '0', topic }]),
  });
  t.deepEqual(await flaky.fetchTopicOffsets('x'), [{ partition: 0, offset: '5', high: '5', low: '0', topic: 'x' }]);
  t.is(calls, 3);

  let attempts = 0;
  const broken = guardAdmin({ fetchTopicOffsets: async (_topic: string): Promise<unknown[]> => (attempts++, race()) });
  const err = await t.throwsAsync(broken.fetchTopicOffsets('y'));
  t.true(err instanceof KafkaMetadataRaceError, String(err));
  t.true((err as KafkaMetadataRaceError).retriable);
  t.is((err as KafkaMetadataRaceError).topic, 'y');
  t.true((err as Error).cause instanceof TypeError);
  t.is(attempts, METADATA_RACE_ATTEMPTS);

  const other = guardAdmin({ fetchTopicOffsets: async (_topic: string): Promise<unknown[]> => { attempts++; throw new Error('UNKNOWN_TOPIC_OR_PARTITION'); } });
  attempts = 0;
  await t.throwsAsync(other.fetchTopicOffsets('z'), { message: 'UNKNOWN_TOPIC_OR_PARTITION' });
  t.is(attempts, 1, 'other errors pass through at once');

  // Admins from Kafka.admin() are guarded: the fixed copy's, not the upstream one's.
  const req = createRequire(import.meta.url);
  const mk = (dir: string) => {
    const { Kafka } = req(dir) as typeof import('kafkajs');
    return new Kafka({ brokers: ['127.0.0.1:1'] }).admin();
  };
  t.not(mk(fixed).fetchTopicOffsets.toString(), mk(unfixed).fetchTopicOffsets.toString());
});
