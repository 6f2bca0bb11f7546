/**
 * Versioned tables (KIP-889) and stream-table joins that read them as of the stream record's time
 * (KIP-914), with a grace period (KIP-923). The tests named after a Java method are ported from
 * Kafka Streams' streams/src/test/java/org/apache/kafka/streams/kstream/internals/KStreamKTableJoinTest.java
 * with their inputs and expected outputs; the others check the versioned store and table semantics
 * (RocksDBVersionedStore, KTableSource over a versioned store). Each runs with the record cache off and on.
 */
import test from 'ava';
import { Serdes, StreamsBuilder, TopologyError } from '@vltava/dsl';
import { TopologyTestDriver } from './topologyTestDriver.js';

const int = Serdes.int32();
const str = Serdes.string();
const caches = [0, 1 << 20];
const keys = [0, 1, 2, 3];

/** KStreamKTableJoinTest.makeJoin: a versioned table "V-grace" (5 min history) joined with grace. */
function makeJoin(graceMs: number, cacheMaxBytes: number) {
  const b = new StreamsBuilder();
  const stream = b.stream('streamTopic', { keySerde: int, valueSerde: str });
  const table = b.table('tableTopic2', { name: 'V-grace', keySerde: int, valueSerde: str, versioned: { historyRetentionMs: 5 * 60_000 } });
  stream.join(table, (v, t) => `${v}+${t}`, { name: 'Grace', gracePeriodMs: graceMs, keySerde: int, valueSerde: str }).to('out', { keySerde: int, valueSerde: str });
  const d = new TopologyTestDriver(b.build(), { cacheMaxBytes });
  const s = d.createInputTopic('streamTopic', { keySerde: int, valueSerde: str });
  const tt = d.createInputTopic('tableTopic2', { keySerde: int, valueSerde: str });
  const out = d.createOutputTopic('out', { keySerde: int, valueSerde: str });
  return {
    d,
    pushToStream: (n: number, prefix: string) => keys.slice(0, n).forEach((k, i) => s.pipeInput(k, `${prefix}${k}`, i)),
    pushToTableNonRandom: (n: number, prefix: string) => keys.slice(0, n).forEach((k) => tt.pipeInput(k, `${prefix}${k}`, 0)),
    stream: s,
    table: tt,
    read: () => out.readRecordsToList().map((r) => [r.key, r.value, r.timestamp]),
  };
}

test('KStreamKTableJoinTest.shouldDelayJoinByGracePeriod, cache off and on', (t) => {
  for (const cache of caches) {
    const j = makeJoin(2, cache);
    j.pushToTableNonRandom(4, 'Y');
    t.deepEqual(j.read(), []);
    j.pushToStream(4, 'X');
    t.deepEqual(j.read(), [[0, 'X0+Y0', 0], [1, 'X1+Y1', 1]], `cache ${cache}`);
    j.pushToTableNonRandom(4, 'YY');
    t.deepEqual(j.read(), []);
    j.pushToStream(4, 'X');
    t.deepEqual(j.read(), [[0, 'X0+YY0', 0], [1, 'X1+YY1', 1]]);
    j.stream.pipeInput(5, 'test', 7);
    t.deepEqual(j.read(), [[2, 'X2+YY2', 2], [2, 'X2+YY2', 2], [3, 'X3+YY3', 3], [3, 'X3+YY3', 3]]);
    j.pushToTableNonRandom(4, 'YYY');
    t.deepEqual(j.read(), []);
    j.d.close();
  }
});

test('KStreamKTableJoinTest.shouldHandleLateJoinsWithGracePeriod', (t) => {
  const j = makeJoin(2, 0);
  j.pushToTableNonRandom(4, 'Y');
  j.pushToStream(4, 'X');
  t.deepEqual(j.read(), [[0, 'X0+Y0', 0], [1, 'X1+Y1', 1]]);
  // too late for the buffer: joined at once, evicting nothing
  j.pushToStream(1, 'X');
  t.deepEqual(j.read(), [[0, 'X0+Y0', 0]]);
  j.d.close();
});

test('KStreamKTableJoinTest.shouldFailIfTableIsNotVersioned (also when inherited through filter) and shouldFailIfGracePeriodIsLongerThanHistoryRetention', (t) => {
  const b = new StreamsBuilder();
  const s = b.stream('topic', { keySerde: str, valueSerde: str });
  const plain = b.table('topic2', { name: 'tableB', keySerde: str, valueSerde: str });
  t.throws(() => s.join(plain, (a, c) => a + c, { name: 'first-join', gracePeriodMs: 6 }), { instanceOf: TopologyError, message: /needs a versioned table/ });
  t.throws(() => s.join(plain.filter(() => true), (a, c) => a + c, { name: 'first-join-2', gracePeriodMs: 6 }), { message: /needs a versioned table/ });
  const versioned = b.table('topic3', { name: 'V', keySerde: str, valueSerde: str, versioned: { historyRetentionMs: 5 * 60_000 } });
  t.throws(() => s.join(versioned, (a, c) => a + c, { name: 'j3', gracePeriodMs: 6 * 60_000 }), { message: /exceeds the table's historyRetentionMs/ });
  // shouldNotFailIfTableIsVersionedButMaterializationIsInherited
  t.notThrows(() => s.join(versioned.filter(() => true), (a, c) => a + c, { name: 'j4', gracePeriodMs: 6 }));
});

test('a stream-table join over a versioned table reads the row valid at the stream record\'s time (KIP-914), cache off and on', (t) => {
  for (const cache of caches) {
    const b = new StreamsBuilder();
    const prices = b.table('prices', { name: 'prices', keySerde: str, valueSerde: int, versioned: { historyRetentionMs: 1000 } });
    b.stream('orders', { keySerde: str, valueSerde: int })
      .join(prices, (qty, price) => qty * price, { name: 'priced' })
      .to('out', { keySerde: str, valueSerde: int });
    const d = new TopologyTestDriver(b.build(), { cacheMaxBytes: cache });
    const p = d.createInputTopic('prices', { keySerde: str, valueSerde: int });
    const o = d.createInputTopic('orders', { keySerde: str, valueSerde: int });
    p.pipeInput('apple', 10, 100);
    p.pipeInput('apple', 20, 200);
    p.pipeInput('apple', 15, 150); // out of order: history only
    o.pipeInput('apple', 1, 120); // price as of 120: 10
    o.pipeInput('apple', 1, 170); // as of 170: 15
    o.pipeInput('apple', 1, 250); // latest: 20
    o.pipeInput('apple', 1, 50); // before the first price: no row, no inner-join result
    p.pipeInput('apple', null, 300); // deleted from 300 on
    o.pipeInput('apple', 1, 310);
    o.pipeInput('apple', 1, 260); // still 20 at 260
    const out = d.createOutputTopic('out', { keySerde: str, valueSerde: int }).readRecordsToList().map((r) => [r.value, r.timestamp]);
    t.deepEqual(out, [[10, 120], [15, 170], [20, 250], [20, 260]], `cache ${cache}`);
    const store = d.getVersionedKeyValueStore<string, number>('prices');
    t.is(store.get('apple'), undefined, 'deleted');
    t.deepEqual(store.get('apple', 160), { value: 15, timestamp: 150, validTo: 200 });
    t.deepEqual(store.get('apple', 299), { value: 20, timestamp: 200, validTo: 300 });
    t.throws(() => d.getKeyValueStore('prices'), { message: /use getVersionedKeyValueStore/ });
    d.close();
  }
});

test('a versioned table forwards only updates that are the key\'s latest; older ones change the history (KTableSource over a versioned store)', (t) => {
  const b = new StreamsBuilder();
  b.table('t', { name: 'v', keySerde: str, valueSerde: str, versioned: { historyRetentionMs: 100 } })
    .toStream()
    .to('out', { keySerde: str, valueSerde: str });
  const dropped: string[] = [];
  const d = new TopologyTestDriver(b.build(), { onRecordDropped: (e) => dropped.push(e.reason) });
  const i = d.createInputTopic('t', { keySerde: str, valueSerde: str });
  i.pipeInput('a', 'a10', 10);
  i.pipeInput('a', 'a5', 5); // out of order: not forwarded
  i.pipeInput('a', 'a20', 20);
  i.pipeInput('b', 'b300', 300); // the store's stream time moves to 300: history before 200 expires
  i.pipeInput('a', 'a150', 150); // older than 300 - 100: not put at all
  i.pipeInput('a', 'a250', 250);
  const out = d.createOutputTopic('out', { keySerde: str, valueSerde: str }).readRecordsToList().map((r) => [r.key, r.value, r.timestamp]);
  t.deepEqual(out, [['a', 'a10', 10], ['a', 'a20', 20], ['b', 'b300', 300], ['a', 'a250', 250]]);
  t.deepEqual(dropped, ['expired versioned update']);
  const s = d.getVersionedKeyValueStore<string, string>('v');
  t.deepEqual(s.get('a'), { value: 'a250', timestamp: 250 });
  t.deepEqual(s.get('a', 210), { value: 'a20', timestamp: 20, validTo: 250 }, 'the version valid at the horizon is kept');
  t.is(s.get('a', 150), undefined, 'older than the history retention');
  d.close();
});

test('a versioned table used by a table-side reader (table-table join) sees its latest rows', (t) => {
  const b = new StreamsBuilder();
  const v = b.table('v', { name: 'v', keySerde: str, valueSerde: str, versioned: { historyRetentionMs: 1000 } });
  const other = b.table('o', { name: 'o', keySerde: str, valueSerde: str });
  other.join(v, (a, c) => `${a}/${c}`, { name: 'tt' }).toStream().to('out', { keySerde: str, valueSerde: str });
  const d = new TopologyTestDriver(b.build());
  d.createInputTopic('v', { keySerde: str, valueSerde: str }).pipeInput('k', 'new', 20);
  d.createInputTopic('v', { keySerde: str, valueSerde: str }).pipeInput('k', 'old', 10);
  d.createInputTopic('o', { keySerde: str, valueSerde: str }).pipeInput('k', 'x', 30);
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: str }).readValuesToList(), ['x/new']);
  d.close();
});

test('KStreamKTableJoinTest.shouldDeserializeBufferedValueWithPutTimeHeadersDuringEviction (a buffered record keeps its own headers)', (t) => {
  const j = makeJoin(2, 0);
  j.table.pipeInput(0, 'Y0', 0);
  j.stream.pipeRecord({ key: 0, value: 'X0', timestamp: 0, headers: { v: 'first' } });
  t.deepEqual(j.read(), []);
  j.stream.pipeRecord({ key: 1, value: 'X1', timestamp: 10, headers: { v: 'second' } }); // evicts X0, buffers X1
  const out = j.d.createOutputTopic('out', { keySerde: int, valueSerde: str }).readRecordsToList();
  t.deepEqual(out.map((r) => [r.key, r.value, r.timestamp]), [[0, 'X0+Y0', 0]]);
  t.deepEqual(out.map((r) => String(r.headers?.['v'])), ['first']);
  j.d.close();
});

test('toTable({ versioned }) makes a versioned table too; a stream-table join reads it as of the record time', (t) => {
  const b = new StreamsBuilder();
  const rates = b
    .stream('rate-updates', { keySerde: str, valueSerde: int })
    .toTable({ name: 'rates', versioned: { historyRetentionMs: 1000 } });
  b.stream('payments', { keySerde: str, valueSerde: int })
    .leftJoin(rates, (amount, rate) => (rate === null ? -1 : amount * rate), { name: 'converted' })
    .to('out', { keySerde: str, valueSerde: int });
  const d = new TopologyTestDriver(b.build());
  const r = d.createInputTopic('rate-updates', { keySerde: str, valueSerde: int });
  const p = d.createInputTopic('payments', { keySerde: str, valueSerde: int });
  r.pipeInput('eur', 2, 10);
  r.pipeInput('eur', 3, 20);
  p.pipeInput('eur', 5, 15);
  p.pipeInput('eur', 5, 25);
  p.pipeInput('eur', 5, 5); // before any rate: leftJoin with null
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: int }).readValuesToList(), [10, 15, -1]);
  t.deepEqual(d.getVersionedKeyValueStore<string, number>('rates').get('eur', 12), { value: 2, timestamp: 10, validTo: 20 });
  d.close();
});
