/**
 * `suppress(Suppressed.untilTimeLimit(ms, BufferConfig, { name }))` on non-windowed and windowed
 * tables. The first four tests are ported from Kafka Streams'
 * streams/src/test/java/org/apache/kafka/streams/kstream/internals/SuppressScenarioTest.java with
 * their inputs and expected outputs (timestamps included); the rest check what
 * KTableSuppressProcessor does (tombstones kept, emit-early and shut-down when full, the buffer time
 * of a key is its first buffered update), each with the record cache off and on.
 */
import test from 'ava';
import { BufferConfig, Serdes, StreamsBuilder, StreamsError, Suppressed, TimeWindows, type KTable } from '@vltava/dsl';
import { TopologyTestDriver } from './topologyTestDriver.js';

const str = Serdes.string();
const long = Serdes.int64();
const caches = [0, 1 << 20];

type KVT = [string | null, number | null, number];

/** SuppressScenarioTest's topology: a table of k -> v, grouped by v and counted, suppressed and raw. */
function scenario(suppressed: Suppressed, cacheMaxBytes: number) {
  const b = new StreamsBuilder();
  const valueCounts = b
    .table('input', { name: 'input', keySerde: str, valueSerde: str, caching: false, logging: false })
    .groupBy((k, v) => ({ key: v, value: k }), { keySerde: str, valueSerde: str })
    .count({ name: 'counts', keySerde: str, valueSerde: long });
  (valueCounts.suppress(suppressed as never) as KTable<string, number>).toStream().to('output-suppressed', { keySerde: str, valueSerde: long });
  valueCounts.toStream().to('output-raw', { keySerde: str, valueSerde: long });
  const d = new TopologyTestDriver(b.build(), { cacheMaxBytes });
  const input = d.createInputTopic('input', { keySerde: str, valueSerde: str });
  const raw = d.createOutputTopic('output-raw', { keySerde: str, valueSerde: long });
  const sup = d.createOutputTopic('output-suppressed', { keySerde: str, valueSerde: long });
  const drain = (o: typeof raw): KVT[] => o.readRecordsToList().map((r) => [r.key, r.value, r.timestamp]);
  return { d, input, raw: () => drain(raw), suppressed: () => drain(sup) };
}

test('SuppressScenarioTest.shouldImmediatelyEmitEventsWithZeroEmitAfter', (t) => {
  const s = scenario(Suppressed.untilTimeLimit(0, BufferConfig.unbounded(), { name: 'sup' }), 0);
  s.input.pipeInput('k1', 'v1', 0);
  s.input.pipeInput('k1', 'v2', 1);
  s.input.pipeInput('k2', 'v1', 2);
  const expected: KVT[] = [['v1', 1, 0], ['v1', 0, 1], ['v2', 1, 1], ['v1', 1, 2]];
  t.deepEqual(s.raw(), expected);
  t.deepEqual(s.suppressed(), expected);
  s.input.pipeInput('x', 'x', 3);
  t.deepEqual(s.raw(), [['x', 1, 3]]);
  t.deepEqual(s.suppressed(), [['x', 1, 3]]);
  s.input.pipeInput('x', 'y', 4);
  t.deepEqual(s.raw(), [['x', 0, 4], ['y', 1, 4]]);
  t.deepEqual(s.suppressed(), [['x', 0, 4], ['y', 1, 4]]);
  s.d.close();
});

test('SuppressScenarioTest.shouldSuppressIntermediateEventsWithTimeLimit, cache off and on', (t) => {
  for (const cache of caches) {
    const s = scenario(Suppressed.untilTimeLimit(2, BufferConfig.unbounded(), { name: 'sup' }), cache);
    s.input.pipeInput('k1', 'v1', 0);
    s.input.pipeInput('k1', 'v2', 1);
    s.input.pipeInput('k2', 'v1', 2);
    t.deepEqual(s.raw(), [['v1', 1, 0], ['v1', 0, 1], ['v2', 1, 1], ['v1', 1, 2]], `cache ${cache}`);
    t.deepEqual(s.suppressed(), [['v1', 1, 2]], `cache ${cache}`);
    // a "tick" record advances stream time to 3: v2 (buffered at 1) is due
    s.input.pipeInput('tick', 'tick', 3);
    t.deepEqual(s.raw(), [['tick', 1, 3]]);
    t.deepEqual(s.suppressed(), [['v2', 1, 1]]);
    s.input.pipeInput('tick', 'tock', 4);
    t.deepEqual(s.raw(), [['tick', 0, 4], ['tock', 1, 4]]);
    // tick is still buffered: first buffered at 3, and it is only 4
    t.deepEqual(s.suppressed(), []);
    s.d.close();
  }
});

test('SuppressScenarioTest.shouldSuppressIntermediateEventsWithRecordLimit, cache off and on', (t) => {
  for (const cache of caches) {
    const s = scenario(Suppressed.untilTimeLimit(Number.MAX_SAFE_INTEGER, BufferConfig.maxRecords(1).emitEarlyWhenFull(), { name: 'sup' }), cache);
    s.input.pipeInput('k1', 'v1', 0);
    s.input.pipeInput('k1', 'v2', 1);
    s.input.pipeInput('k2', 'v1', 2);
    t.deepEqual(s.raw(), [['v1', 1, 0], ['v1', 0, 1], ['v2', 1, 1], ['v1', 1, 2]]);
    // consecutive updates of v1 collapse into the latter; the last update waits for another key
    t.deepEqual(s.suppressed(), [['v1', 0, 1], ['v2', 1, 1]], `cache ${cache}`);
    s.input.pipeInput('x', 'x', 3);
    t.deepEqual(s.raw(), [['x', 1, 3]]);
    t.deepEqual(s.suppressed(), [['v1', 1, 2]]);
    s.d.close();
  }
});

test('SuppressScenarioTest.shouldSuppressIntermediateEventsWithBytesLimit (entries count a little over 100 bytes)', (t) => {
  const s = scenario(Suppressed.untilTimeLimit(Number.MAX_SAFE_INTEGER, BufferConfig.maxBytes(200).emitEarlyWhenFull(), { name: 'sup' }), 0);
  s.input.pipeInput('k1', 'v1', 0);
  s.input.pipeInput('k1', 'v2', 1);
  s.input.pipeInput('k2', 'v1', 2);
  t.deepEqual(s.raw(), [['v1', 1, 0], ['v1', 0, 1], ['v2', 1, 1], ['v1', 1, 2]]);
  t.deepEqual(s.suppressed(), [['v1', 0, 1], ['v2', 1, 1]]);
  s.input.pipeInput('x', 'x', 3);
  t.deepEqual(s.raw(), [['x', 1, 3]]);
  t.deepEqual(s.suppressed(), [['v1', 1, 2]]);
  s.d.close();
});

test('untilTimeLimit keeps tombstones and carries the old value from before the first buffered update (KTableSuppressProcessor), cache off and on', (t) => {
  for (const cache of caches) {
    const b = new StreamsBuilder();
    b.table('t', { name: 't', keySerde: str, valueSerde: str })
      .suppress(Suppressed.untilTimeLimit(10, BufferConfig.unbounded(), { name: 'sup' }))
      .toStream()
      .to('out', { keySerde: str, valueSerde: str });
    const d = new TopologyTestDriver(b.build(), { cacheMaxBytes: cache });
    const i = d.createInputTopic('t', { keySerde: str, valueSerde: str });
    i.pipeInput('a', 'a1', 0);
    i.pipeInput('a', 'a2', 5);
    i.pipeInput('b', 'b1', 6);
    i.pipeInput('a', null, 8); // deleted while buffered: the tombstone is what comes out
    i.pipeInput('c', 'c1', 10); // a was first buffered at 0: due at 10
    const out = d.createOutputTopic('out', { keySerde: str, valueSerde: str });
    t.deepEqual(out.readRecordsToList().map((r) => [r.key, r.value, r.timestamp]), [['a', null, 8]], `cache ${cache}`);
    i.pipeInput('c', 'c2', 16); // b (6) due; c was buffered at 10, not yet
    t.deepEqual(out.readRecordsToList().map((r) => [r.key, r.value, r.timestamp]), [['b', 'b1', 6]]);
    t.is(d.getKeyValueStore<Buffer, Buffer>('sup').approximateNumEntries() > 0, true);
    d.close();
  }
});

test('untilTimeLimit forwards Change values with the prior value: a downstream groupBy aggregation subtracts correctly', (t) => {
  const b = new StreamsBuilder();
  b.table('users', { name: 'users', keySerde: str, valueSerde: str })
    .suppress(Suppressed.untilTimeLimit(100, BufferConfig.unbounded(), { name: 'sup' }))
    .groupBy((_u, region) => ({ key: region, value: 1 }), { keySerde: str, valueSerde: long })
    .count({ name: 'per-region' })
    .toStream()
    .to('out', { keySerde: str, valueSerde: long });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('users', { keySerde: str, valueSerde: str });
  i.pipeInput('alice', 'eu', 0);
  i.pipeInput('tick', 'x', 100); // alice emitted: eu = 1
  i.pipeInput('alice', 'us', 110);
  i.pipeInput('alice', 'asia', 120); // collapsed with the us update; old value still eu
  i.pipeInput('tick', 'x', 300);
  const out = d.createOutputTopic('out', { keySerde: str, valueSerde: long }).readKeyValuesToMap();
  t.deepEqual([...out].sort(), [['asia', 1], ['eu', 0], ['x', 1]]);
  t.is(out.get('us'), undefined, 'the intermediate us row never reached the aggregation');
  d.close();
});

test('untilTimeLimit with maxRecords and shutDownWhenFull stops the task with a clear error', (t) => {
  const b = new StreamsBuilder();
  b.table('t', { name: 't', keySerde: str, valueSerde: str })
    .suppress(Suppressed.untilTimeLimit(1000, BufferConfig.maxRecords(2).shutDownWhenFull(), { name: 'sup' }))
    .toStream()
    .to('out', { keySerde: str, valueSerde: str });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('t', { keySerde: str, valueSerde: str });
  i.pipeInput('a', '1', 0);
  i.pipeInput('b', '1', 1);
  i.pipeInput('a', '2', 2); // same key: still 2 keys
  const err = t.throws(() => i.pipeInput('c', '1', 3), { instanceOf: StreamsError });
  t.regex(err!.message, /suppress "sup".*over its maximum \(3\/2 keys/);
  t.regex(err!.message, /shutDownWhenFull/);
});

test('untilTimeLimit on a windowed table: the latest count per window, at most once per time limit', (t) => {
  for (const cache of caches) {
    const b = new StreamsBuilder();
    b.stream('in', { keySerde: str, valueSerde: str })
      .groupByKey()
      .windowedBy(TimeWindows.ofSizeAndGrace(100, 50))
      .count({ name: 'counts' })
      .suppress(Suppressed.untilTimeLimit(20, BufferConfig.maxRecords(100), { name: 'sup' }))
      .toStream()
      .to('out', { keySerde: Serdes.windowed(str), valueSerde: long });
    const d = new TopologyTestDriver(b.build(), { cacheMaxBytes: cache });
    const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
    for (const ts of [0, 5, 10, 19, 20, 30, 45]) i.pipeInput('a', 'x', ts);
    const out = d.createOutputTopic('out', { keySerde: Serdes.windowed(str), valueSerde: long });
    // buffered at 0, due at 20 (4 records then: 0, 5, 10, 19 + the one at 20); then buffered at 30, due at 50
    t.deepEqual(out.readRecordsToList().map((r) => [r.key!.window.start, r.value, r.timestamp]), [[0, 5, 20]], `cache ${cache}`);
    i.pipeInput('a', 'x', 50);
    t.deepEqual(out.readRecordsToList().map((r) => [r.key!.window.start, r.value, r.timestamp]), [[0, 8, 50]]);
    d.close();
  }
});

test('untilTimeLimit needs a name and a BufferConfig', (t) => {
  t.throws(() => Suppressed.untilTimeLimit(10, {} as never, { name: 'x' }), { message: /pass a BufferConfig/ });
  t.throws(() => Suppressed.untilTimeLimit(-1, BufferConfig.unbounded(), { name: 'x' }), { message: /non-negative/ });
  const b = new StreamsBuilder();
  const table = b.table('t', { name: 't', keySerde: str, valueSerde: str });
  t.throws(() => table.suppress(Suppressed.untilTimeLimit(10, BufferConfig.unbounded(), {} as never)), { message: /needs a name/ });
});

test('untilTimeLimit emits a key with the headers of its latest update (the record context Kafka Streams forwards)', (t) => {
  const b = new StreamsBuilder();
  b.table('t', { name: 't', keySerde: str, valueSerde: str })
    .suppress(Suppressed.untilTimeLimit(10, BufferConfig.unbounded(), { name: 'sup' }))
    .toStream()
    .to('out', { keySerde: str, valueSerde: str });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('t', { keySerde: str, valueSerde: str });
  i.pipeRecord({ key: 'a', value: '1', timestamp: 0, headers: { trace: 'one' } });
  i.pipeRecord({ key: 'a', value: '2', timestamp: 5, headers: { trace: 'two', bin: Buffer.from([1, 2]) } });
  i.pipeRecord({ key: 'b', value: '1', timestamp: 10, headers: { trace: 'three' } });
  const out = d.createOutputTopic('out', { keySerde: str, valueSerde: str }).readRecordsToList();
  t.deepEqual(out.map((r) => [r.key, r.value, String(r.headers?.['trace'])]), [['a', '2', 'two']]);
  t.deepEqual(out[0]!.headers?.['bin'], Buffer.from([1, 2]));
  d.close();
});

test('SuppressScenarioTest.shouldWorkBeforeGroupBy', (t) => {
  const b = new StreamsBuilder();
  b.table('topic', { name: 'topic', keySerde: str, valueSerde: str })
    .suppress(Suppressed.untilTimeLimit(10, BufferConfig.unbounded(), { name: 'sup' }))
    .groupBy((k, v) => ({ key: k, value: v }), { keySerde: str, valueSerde: str })
    .count({ name: 'count' })
    .toStream()
    .to('output', { keySerde: str, valueSerde: long });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('topic', { keySerde: str, valueSerde: str });
  i.pipeInput('A', 'a', 0);
  i.pipeInput('tick', 'tick', 10);
  t.deepEqual(d.createOutputTopic('output', { keySerde: str, valueSerde: long }).readRecordsToList().map((r) => [r.key, r.value, r.timestamp]), [['A', 1, 0]]);
  d.close();
});

function joinScenario(suppressLeft: boolean, cache: number) {
  const b = new StreamsBuilder();
  const sup = (tb: KTable<string, string>) => tb.suppress(Suppressed.untilTimeLimit(10, BufferConfig.unbounded(), { name: 'sup' }));
  const leftTable = b.table('left', { name: 'left', keySerde: str, valueSerde: str });
  const rightTable = b.table('right', { name: 'right', keySerde: str, valueSerde: str });
  const left = suppressLeft ? sup(leftTable) : leftTable;
  const right = suppressLeft ? rightTable : sup(rightTable);
  left.outerJoin(right, (l, r) => `(${l},${r})`, { name: 'j' }).toStream().to('output', { keySerde: str, valueSerde: str });
  const d = new TopologyTestDriver(b.build(), { cacheMaxBytes: cache });
  const out = d.createOutputTopic('output', { keySerde: str, valueSerde: str });
  return {
    d,
    left: d.createInputTopic('left', { keySerde: str, valueSerde: str }),
    right: d.createInputTopic('right', { keySerde: str, valueSerde: str }),
    read: () => out.readRecordsToList().map((r) => [r.key, r.value, r.timestamp]),
  };
}

test('SuppressScenarioTest.shouldWorkBeforeJoinRight: a join reads a suppressed table as last emitted', (t) => {
  for (const cache of caches) {
    const s = joinScenario(false, cache);
    s.right.pipeInput('B', '1', 0);
    s.right.pipeInput('A', '1', 0);
    t.deepEqual(s.read(), []);
    s.right.pipeInput('tick', 'tick', 10);
    t.deepEqual(s.read(), [['A', '(null,1)', 0], ['B', '(null,1)', 0]], `cache ${cache}`);
    s.right.pipeInput('A', '2', 11);
    t.deepEqual(s.read(), []);
    s.left.pipeInput('A', 'a', 12); // joins the right side as emitted
    t.deepEqual(s.read(), [['A', '(a,1)', 12]]);
    s.left.pipeInput('B', 'b', 12); // B is no longer buffered: read through to the table
    t.deepEqual(s.read(), [['B', '(b,1)', 12]]);
    s.left.pipeInput('A', 'b', 13);
    t.deepEqual(s.read(), [['A', '(b,1)', 13]]);
    s.right.pipeInput('tick', 'tick1', 21);
    t.deepEqual(s.read(), [['tick', '(null,tick1)', 21], ['A', '(b,2)', 13]]);
    s.d.close();
  }
});

test('SuppressScenarioTest.shouldWorkBeforeJoinLeft', (t) => {
  for (const cache of caches) {
    const s = joinScenario(true, cache);
    s.left.pipeInput('B', '1', 0);
    s.left.pipeInput('A', '1', 0);
    t.deepEqual(s.read(), []);
    s.left.pipeInput('tick', 'tick', 10);
    t.deepEqual(s.read(), [['A', '(1,null)', 0], ['B', '(1,null)', 0]], `cache ${cache}`);
    s.left.pipeInput('A', '2', 11);
    t.deepEqual(s.read(), []);
    s.right.pipeInput('A', 'a', 12);
    t.deepEqual(s.read(), [['A', '(1,a)', 12]]);
    s.right.pipeInput('B', 'b', 12);
    t.deepEqual(s.read(), [['B', '(1,b)', 12]]);
    s.right.pipeInput('A', 'b', 13);
    t.deepEqual(s.read(), [['A', '(1,b)', 13]]);
    s.left.pipeInput('tick', 'tick1', 21);
    t.deepEqual(s.read(), [['tick', '(tick1,null)', 21], ['A', '(2,b)', 13]]);
    s.d.close();
  }
});

test('untilWindowCloses with a bounded buffer shuts down when full (Kafka Streams\' StrictBufferConfig); emit-early is refused', (t) => {
  t.throws(() => Suppressed.untilWindowCloses({ name: 'f', buffer: BufferConfig.maxRecords(2) }), { message: /must shutDownWhenFull/ });
  for (const cache of caches) {
    const b = new StreamsBuilder();
    b.stream('in', { keySerde: str, valueSerde: str })
      .groupByKey()
      .windowedBy(TimeWindows.ofSizeAndGrace(10, 5))
      .count({ name: 'counts' })
      .suppress(Suppressed.untilWindowCloses({ name: 'final', buffer: BufferConfig.maxRecords(2).shutDownWhenFull() }))
      .toStream()
      .to('out', { keySerde: Serdes.windowed(str), valueSerde: long });
    const d = new TopologyTestDriver(b.build(), { cacheMaxBytes: cache });
    const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
    i.pipeInput('a', 'x', 1);
    i.pipeInput('b', 'x', 2);
    i.pipeInput('a', 'x', 3); // same window: still 2
    i.pipeInput('a', 'x', 15); // closes [0,10): a and b emitted; [10,20) of a buffered
    const out = d.createOutputTopic('out', { keySerde: Serdes.windowed(str), valueSerde: long });
    t.deepEqual(out.readRecordsToList().map((r) => [r.key!.key, r.key!.window.start, r.value]), [['a', 0, 2], ['b', 0, 1]], `cache ${cache}`);
    i.pipeInput('b', 'x', 16);
    const err = t.throws(() => i.pipeInput('c', 'x', 17), { instanceOf: StreamsError });
    t.regex(err!.message, /suppress "final".*over its maximum \(3\/2 windows/);
  }
});
