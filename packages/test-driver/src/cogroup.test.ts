/**
 * `cogroup` (KIP-150). The tests named after a Java method are ported from Kafka Streams'
 * streams/src/test/java/org/apache/kafka/streams/kstream/internals/CogroupedKStreamImplTest.java
 * with their inputs and expected outputs (timestamps included), with the record cache off (as the
 * Java tests read every update) and on (final values per key).
 */
import test from 'ava';
import { Serdes, SessionWindows, StreamsBuilder, TimeWindows, TopologyError, type KTable } from '@vltava/dsl';
import { TopologyTestDriver } from './topologyTestDriver.js';

const str = Serdes.string();
const int = Serdes.int32();
const caches = [0, 1 << 20];

const STRING_AGGREGATOR = (_k: string, v: string, agg: string) => agg + v;
const STRING_INITIALIZER = () => '';
const STRSUM_AGGREGATOR = (_k: string, v: string, agg: number) => agg + Number.parseInt(v, 10);
const SUM_AGGREGATOR = (_k: string, v: number, agg: number) => agg + v;
const SUM_INITIALIZER = () => 0;

type Rec = [string | null, unknown, number];

function run<V>(
  build: (b: StreamsBuilder) => KTable<string, V>,
  valueSerde: typeof str | typeof int,
  feed: (pipe: { one: (k: string, v: string | null, ts: number) => void; two: (k: string, v: never, ts: number) => void }) => void,
  cacheMaxBytes: number,
  twoSerde: typeof str | typeof int = str,
): { records: Rec[]; final: Map<string | null, unknown> } {
  const b = new StreamsBuilder();
  build(b).toStream().to('output', { keySerde: str, valueSerde: valueSerde as never });
  const d = new TopologyTestDriver(b.build(), { cacheMaxBytes });
  const one = d.createInputTopic('one', { keySerde: str, valueSerde: str });
  let two: ReturnType<typeof d.createInputTopic<string, never>> | undefined;
  feed({ one: (k, v, ts) => one.pipeInput(k, v, ts), two: (k, v, ts) => (two ??= d.createInputTopic('two', { keySerde: str, valueSerde: twoSerde as never })).pipeInput(k, v, ts) });
  const out = d.createOutputTopic('output', { keySerde: str, valueSerde: valueSerde as never });
  const records = out.readRecordsToList().map((r): Rec => [r.key, r.value, r.timestamp]);
  const final = new Map<string | null, unknown>();
  for (const [k, v] of records) final.set(k, v);
  d.close();
  return { records, final };
}

const oneStream = (b: StreamsBuilder) => b.stream('one', { keySerde: str, valueSerde: str }).groupByKey();
const twoStream = (b: StreamsBuilder) => b.stream('two', { keySerde: str, valueSerde: str }).groupByKey();

test('CogroupedKStreamImplTest.shouldCogroupAndAggregateSingleKStreams and testCogroupHandleNullValues', (t) => {
  for (const cache of caches) {
    const { records, final } = run(
      (b) => oneStream(b).cogroup(STRING_AGGREGATOR).aggregate(STRING_INITIALIZER, { name: 'agg', valueSerde: str }),
      str,
      (p) => {
        p.one('k1', 'A', 0);
        p.one('k2', 'B', 0);
        p.one('k2', null, 0); // dropped: null value in aggregation
        p.one('k2', 'B', 0);
        p.one('k1', 'A', 0);
      },
      cache,
    );
    if (cache === 0) t.deepEqual(records, [['k1', 'A', 0], ['k2', 'B', 0], ['k2', 'BB', 0], ['k1', 'AA', 0]]);
    t.deepEqual([...final], [['k1', 'AA'], ['k2', 'BB']], `cache ${cache}`);
  }
});

test('CogroupedKStreamImplTest.shouldCogroupAndAggregateTwoKStreamsWithDistinctKeys', (t) => {
  for (const cache of caches) {
    const { records, final } = run(
      (b) => oneStream(b).cogroup(STRING_AGGREGATOR).cogroup(twoStream(b), STRING_AGGREGATOR).aggregate(STRING_INITIALIZER, { name: 'agg', valueSerde: str }),
      str,
      (p) => {
        for (const ts of [0, 1, 10, 100]) p.one('k1', 'A', ts);
        for (const ts of [100, 200, 1, 500, 500, 100]) p.two('k2', 'B' as never, ts);
      },
      cache,
    );
    const expected: Rec[] = [
      ['k1', 'A', 0], ['k1', 'AA', 1], ['k1', 'AAA', 10], ['k1', 'AAAA', 100],
      ['k2', 'B', 100], ['k2', 'BB', 200], ['k2', 'BBB', 200], ['k2', 'BBBB', 500], ['k2', 'BBBBB', 500], ['k2', 'BBBBBB', 500],
    ];
    if (cache === 0) t.deepEqual(records, expected);
    t.deepEqual([...final], [['k1', 'AAAA'], ['k2', 'BBBBBB']], `cache ${cache}`);
  }
});

test('CogroupedKStreamImplTest.shouldCogroupAndAggregateTwoKStreamsWithSharedKeys', (t) => {
  for (const cache of caches) {
    const { records, final } = run(
      (b) => oneStream(b).cogroup(STRING_AGGREGATOR).cogroup(twoStream(b), STRING_AGGREGATOR).aggregate(STRING_INITIALIZER, { name: 'agg', valueSerde: str }),
      str,
      (p) => {
        p.one('k1', 'A', 0);
        p.one('k2', 'A', 1);
        p.one('k1', 'A', 10);
        p.one('k2', 'A', 100);
        for (const [k, ts] of [['k2', 100], ['k2', 200], ['k1', 1], ['k2', 500], ['k1', 500], ['k2', 500], ['k3', 500], ['k2', 100]] as const) p.two(k, 'B' as never, ts);
      },
      cache,
    );
    if (cache === 0) {
      t.deepEqual(records.slice(0, 10), [
        ['k1', 'A', 0], ['k2', 'A', 1], ['k1', 'AA', 10], ['k2', 'AA', 100], ['k2', 'AAB', 100],
        ['k2', 'AABB', 200], ['k1', 'AAB', 10], ['k2', 'AABBB', 500], ['k1', 'AABB', 500], ['k2', 'AABBBB', 500],
      ]);
      // the two records the Java test leaves unread
      t.deepEqual(records.slice(10), [['k3', 'B', 500], ['k2', 'AABBBBB', 500]]);
    }
    t.deepEqual([...final].sort(), [['k1', 'AABB'], ['k2', 'AABBBBB'], ['k3', 'B']], `cache ${cache}`);
  }
});

const sharedKeysNumbers = (p: { one: (k: string, v: string, ts: number) => void; two: (k: string, v: never, ts: number) => void }, two: (v: number) => unknown) => {
  p.one('k1', '1', 0);
  p.one('k2', '1', 1);
  p.one('k1', '1', 10);
  p.one('k2', '1', 100);
  for (const [k, v, ts] of [['k2', 2, 100], ['k2', 2, 200], ['k1', 2, 1], ['k2', 2, 500], ['k1', 2, 500], ['k2', 3, 500], ['k3', 2, 500], ['k2', 2, 100]] as const) p.two(k, two(v) as never, ts);
};
const sumsExpected: Rec[] = [
  ['k1', 1, 0], ['k2', 1, 1], ['k1', 2, 10], ['k2', 2, 100], ['k2', 4, 100],
  ['k2', 6, 200], ['k1', 4, 10], ['k2', 8, 500], ['k1', 6, 500], ['k2', 11, 500],
];

test('CogroupedKStreamImplTest.shouldAllowDifferentOutputTypeInCoGroup', (t) => {
  for (const cache of caches) {
    const { records, final } = run(
      (b) => oneStream(b).cogroup(STRSUM_AGGREGATOR).cogroup(twoStream(b), STRSUM_AGGREGATOR).aggregate(SUM_INITIALIZER, { name: 'store1', valueSerde: int }),
      int,
      (p) => sharedKeysNumbers(p, String),
      cache,
    );
    if (cache === 0) t.deepEqual(records.slice(0, 10), sumsExpected);
    t.deepEqual([...final].sort(), [['k1', 6], ['k2', 13], ['k3', 2]], `cache ${cache}`);
  }
});

test('CogroupedKStreamImplTest.shouldCoGroupStreamsWithDifferentInputTypes (typed: string and int32 inputs, int32 aggregate)', (t) => {
  for (const cache of caches) {
    const { records, final } = run(
      (b) =>
        oneStream(b)
          .cogroup(STRSUM_AGGREGATOR)
          .cogroup(b.stream('two', { keySerde: str, valueSerde: int }).groupByKey(), SUM_AGGREGATOR)
          .aggregate(SUM_INITIALIZER, { name: 'store1', valueSerde: int }),
      int,
      (p) => sharedKeysNumbers(p, (v) => v),
      cache,
      int,
    );
    if (cache === 0) t.deepEqual(records.slice(0, 10), sumsExpected);
    t.deepEqual([...final].sort(), [['k1', 6], ['k2', 13], ['k3', 2]], `cache ${cache}`);
  }
});

test('CogroupedKStreamImplTest.testCogroupKeyMixedAggregators', (t) => {
  const REMOVER = (_k: string, v: string, agg: string) => `${agg}-${v}`;
  const ADDER = (_k: string, v: string, agg: string) => `${agg}+${v}`;
  for (const cache of caches) {
    const { records, final } = run(
      (b) => oneStream(b).cogroup(REMOVER).cogroup(twoStream(b), ADDER).aggregate(() => '0', { name: 'store1', valueSerde: str }),
      str,
      (p) => {
        p.one('k1', '1', 0);
        p.one('k2', '1', 1);
        p.one('k1', '1', 10);
        p.one('k2', '1', 100);
        p.two('k1', '2' as never, 500);
        p.two('k2', '2' as never, 500);
        p.two('k1', '2' as never, 500);
        p.two('k2', '2' as never, 100);
      },
      cache,
    );
    if (cache === 0) {
      t.deepEqual(records, [
        ['k1', '0-1', 0], ['k2', '0-1', 1], ['k1', '0-1-1', 10], ['k2', '0-1-1', 100],
        ['k1', '0-1-1+2', 500], ['k2', '0-1-1+2', 500], ['k1', '0-1-1+2+2', 500], ['k2', '0-1-1+2+2', 500],
      ]);
    }
    t.deepEqual([...final].sort(), [['k1', '0-1-1+2+2'], ['k2', '0-1-1+2+2']], `cache ${cache}`);
  }
});

test('cogroup: a re-keyed input goes through its own repartition topic; results combine both inputs', (t) => {
  for (const cache of caches) {
    const b = new StreamsBuilder();
    const clicks = b.stream('clicks', { keySerde: str, valueSerde: str }).groupBy((_page, user) => user, { keySerde: str, valueSerde: str });
    const buys = b.stream('buys', { keySerde: str, valueSerde: int }).groupByKey();
    const stats = clicks
      .cogroup<{ clicks: number; spent: number }>((_u, _page, a) => ({ ...a, clicks: a.clicks + 1 }))
      .cogroup(buys, (_u, amount, a) => ({ ...a, spent: a.spent + amount }))
      .aggregate(() => ({ clicks: 0, spent: 0 }), { name: 'user-stats', valueSerde: Serdes.json() });
    stats.toStream().to('out', { keySerde: str, valueSerde: Serdes.json() });
    const topology = b.build();
    t.true(topology.describe().toString().includes('user-stats-cogroup-0-repartition'));
    t.deepEqual(topology.copartitionGroups.map((g) => g.map((x) => x.name).sort()), [['buys', 'user-stats-cogroup-0-repartition']]);
    const d = new TopologyTestDriver(topology, { cacheMaxBytes: cache });
    const c = d.createInputTopic('clicks', { keySerde: str, valueSerde: str });
    const p = d.createInputTopic('buys', { keySerde: str, valueSerde: int });
    c.pipeInput('home', 'ann', 1);
    c.pipeInput('cart', 'ann', 2);
    p.pipeInput('ann', 30, 3);
    c.pipeInput('home', 'bob', 4);
    p.pipeInput('bob', 5, 2);
    const out = d.createOutputTopic('out', { keySerde: str, valueSerde: Serdes.json<{ clicks: number; spent: number }>() }).readKeyValuesToMap();
    t.deepEqual(out.get('ann'), { clicks: 2, spent: 30 }, `cache ${cache}`);
    t.deepEqual(out.get('bob'), { clicks: 1, spent: 5 });
    t.deepEqual(d.getTimestampedKeyValueStore<string, unknown>('user-stats').get('bob'), { value: { clicks: 1, spent: 5 }, timestamp: 4 });
    d.close();
  }
});

test('cogroup windowed by TimeWindows: both inputs fold into the same windows (max timestamp per window)', (t) => {
  for (const cache of caches) {
    const b = new StreamsBuilder();
    b.stream('one', { keySerde: str, valueSerde: str })
      .groupByKey()
      .cogroup(STRING_AGGREGATOR)
      .cogroup(b.stream('two', { keySerde: str, valueSerde: str }).groupByKey(), (_k, v, a: string) => a + v.toLowerCase())
      .windowedBy(TimeWindows.ofSizeAndGrace(10, 5))
      .aggregate(STRING_INITIALIZER, { name: 'w', valueSerde: str })
      .toStream()
      .to('out', { keySerde: Serdes.windowed(str), valueSerde: str });
    const d = new TopologyTestDriver(b.build(), { cacheMaxBytes: cache });
    const one = d.createInputTopic('one', { keySerde: str, valueSerde: str });
    const two = d.createInputTopic('two', { keySerde: str, valueSerde: str });
    one.pipeInput('a', 'A', 1);
    two.pipeInput('a', 'B', 3);
    one.pipeInput('a', 'A', 12);
    two.pipeInput('a', 'B', 2);
    const out = d.createOutputTopic('out', { keySerde: Serdes.windowed(str), valueSerde: str }).readRecordsToList();
    const recs = out.map((r) => [r.key!.window.start, r.value, r.timestamp]);
    // (the driver commits after every pipe, so the cache changes nothing here)
    t.deepEqual(recs, [[0, 'A', 1], [0, 'Ab', 3], [10, 'A', 12], [0, 'Abb', 3]], `cache ${cache}`);
    d.close();
  }
});

test('cogroup windowed by SessionWindows merges sessions across inputs', (t) => {
  const b = new StreamsBuilder();
  b.stream('one', { keySerde: str, valueSerde: str })
    .groupByKey()
    .cogroup((_k, _v, n: number) => n + 1)
    .cogroup(b.stream('two', { keySerde: str, valueSerde: str }).groupByKey(), (_k, _v, n: number) => n + 10)
    .windowedBy(SessionWindows.ofInactivityGapAndGrace(5, 100))
    .aggregate(() => 0, (_k, x, y) => x + y, { name: 's', valueSerde: Serdes.int64() })
    .toStream()
    .to('out', { keySerde: Serdes.windowed(str), valueSerde: Serdes.int64() });
  const d = new TopologyTestDriver(b.build());
  d.createInputTopic('one', { keySerde: str, valueSerde: str }).pipeInput('a', 'x', 0);
  d.createInputTopic('one', { keySerde: str, valueSerde: str }).pipeInput('a', 'x', 10);
  d.createInputTopic('two', { keySerde: str, valueSerde: str }).pipeInput('a', 'y', 5); // bridges [0,0] and [10,10]
  const out = d.createOutputTopic('out', { keySerde: Serdes.windowed(str), valueSerde: Serdes.int64() }).readRecordsToList();
  const last = out[out.length - 1]!;
  t.deepEqual([last.key!.window.start, last.key!.window.end, last.value], [0, 10, 12]);
  d.close();
});

test('cogroup validates its arguments', (t) => {
  const b = new StreamsBuilder();
  const g = b.stream('one', { keySerde: str, valueSerde: str }).groupByKey();
  const c = g.cogroup(STRING_AGGREGATOR);
  t.throws(() => c.cogroup(null as never, STRING_AGGREGATOR), { instanceOf: TopologyError });
  t.throws(() => c.cogroup(g, null as never), { instanceOf: TopologyError });
  t.throws(() => c.cogroup(g, STRING_AGGREGATOR), { message: /already part of the cogroup/ });
  t.throws(() => c.aggregate(null as never, { name: 'x' }), { instanceOf: TopologyError });
  t.throws(() => c.aggregate(STRING_INITIALIZER, {} as never), { message: /needs an explicit name/ });
});

// Ported from streams/src/test/java/org/apache/kafka/streams/kstream/internals/TimeWindowedCogroupedKStreamImplTest.java
// (MockAggregator.TOSTRING_ADDER / TOSTRING_REMOVER, MockInitializer.STRING_INIT, windows of 500 ms).
const ADDER = (_k: string, v: string, a: string) => `${a}+${v}`;
const REMOVER = (_k: string, v: string, a: string) => `${a}-${v}`;

function windowedCogroup(windows: TimeWindows, withSecond: boolean, cache: number) {
  const b = new StreamsBuilder();
  let c = b.stream('topic', { keySerde: str, valueSerde: str }).groupByKey().cogroup(ADDER);
  if (withSecond) c = c.cogroup(b.stream('topic2', { keySerde: str, valueSerde: str }).groupByKey(), REMOVER);
  c.windowedBy(windows).aggregate(() => '0', { name: 'agg', valueSerde: str }).toStream().to('output', { keySerde: Serdes.windowed(str), valueSerde: str });
  const d = new TopologyTestDriver(b.build(), { cacheMaxBytes: cache });
  const one = d.createInputTopic('topic', { keySerde: str, valueSerde: str });
  const two = withSecond ? d.createInputTopic('topic2', { keySerde: str, valueSerde: str }) : one;
  const read = () => d.createOutputTopic('output', { keySerde: Serdes.windowed(str), valueSerde: str }).readRecordsToList().map((r) => [r.key!.key, r.value, r.timestamp]);
  return { d, one, two, read };
}

test('TimeWindowedCogroupedKStreamImplTest.timeWindowAggregateTestStreamsTest and timeWindowMixAggregatorsTest', (t) => {
  for (const cache of caches) {
    for (const mixed of [false, true]) {
      const s = windowedCogroup(TimeWindows.ofSizeWithNoGrace(500), true, cache);
      s.one.pipeInput('k1', 'A', 0);
      s.one.pipeInput('k2', 'A', 0);
      s.one.pipeInput('k2', 'A', 1);
      s.one.pipeInput('k1', 'A', 2);
      const later = mixed ? s.two : s.one;
      later.pipeInput('k1', 'B', 3);
      later.pipeInput('k2', 'B', 3);
      later.pipeInput('k2', 'B', 4);
      later.pipeInput('k1', 'B', 4);
      const op = mixed ? '-' : '+';
      t.deepEqual(s.read(), [
        ['k1', '0+A', 0], ['k2', '0+A', 0], ['k2', '0+A+A', 1], ['k1', '0+A+A', 2],
        ['k1', `0+A+A${op}B`, 3], ['k2', `0+A+A${op}B`, 3], ['k2', `0+A+A${op}B${op}B`, 4], ['k1', `0+A+A${op}B${op}B`, 4],
      ], `cache ${cache}, mixed ${mixed}`);
      s.d.close();
    }
  }
});

test('TimeWindowedCogroupedKStreamImplTest.timeWindowAggregateManyWindowsTest', (t) => {
  const s = windowedCogroup(TimeWindows.ofSizeWithNoGrace(500), false, 0);
  s.one.pipeInput('k1', 'A', 0);
  s.one.pipeInput('k2', 'A', 499);
  s.one.pipeInput('k2', 'A', 500);
  s.one.pipeInput('k1', 'A', 500);
  t.deepEqual(s.read(), [['k1', '0+A', 0], ['k2', '0+A', 499], ['k2', '0+A', 500], ['k1', '0+A', 500]]);
  s.d.close();
});

test('TimeWindowedCogroupedKStreamImplTest.timeWindowAggregateOverlappingWindowsTest', (t) => {
  const s = windowedCogroup(TimeWindows.ofSizeWithNoGrace(500).advanceBy(200), false, 0);
  s.one.pipeInput('k1', 'A', 0);
  s.one.pipeInput('k2', 'A', 0);
  s.one.pipeInput('k1', 'B', 250);
  s.one.pipeInput('k2', 'B', 250);
  s.one.pipeInput('k2', 'A', 500);
  s.one.pipeInput('k1', 'A', 500);
  t.deepEqual(s.read(), [
    ['k1', '0+A', 0], ['k2', '0+A', 0],
    ['k1', '0+A+B', 250], ['k1', '0+B', 250], ['k2', '0+A+B', 250], ['k2', '0+B', 250],
    ['k2', '0+B+A', 500], ['k2', '0+A', 500], ['k1', '0+B+A', 500], ['k1', '0+A', 500],
  ]);
  s.d.close();
});

test('TimeWindowedCogroupedKStreamImplTest.timeWindowMixAggregatorsManyWindowsTest', (t) => {
  const s = windowedCogroup(TimeWindows.ofSizeWithNoGrace(500), true, 0);
  s.one.pipeInput('k1', 'A', 0);
  s.one.pipeInput('k2', 'A', 0);
  s.one.pipeInput('k2', 'A', 1);
  s.one.pipeInput('k1', 'A', 2);
  s.two.pipeInput('k1', 'B', 3);
  s.two.pipeInput('k2', 'B', 3);
  s.two.pipeInput('k2', 'B', 501);
  s.two.pipeInput('k1', 'B', 501);
  t.deepEqual(s.read(), [
    ['k1', '0+A', 0], ['k2', '0+A', 0], ['k2', '0+A+A', 1], ['k1', '0+A+A', 2],
    ['k1', '0+A+A-B', 3], ['k2', '0+A+A-B', 3], ['k2', '0-B', 501], ['k1', '0-B', 501],
  ]);
  s.d.close();
});

// Ported from streams/src/test/java/org/apache/kafka/streams/kstream/internals/SessionWindowedCogroupedKStreamImplTest.java
// (sessionMerger = (k, a, b) -> a + "+" + b; SessionWindows.with(...) had a grace of a day).
const MERGER = (_k: string, a: string, b: string) => `${a}+${b}`;
function sessionCogroup(gapMs: number, withSecond: boolean, cache: number) {
  const b = new StreamsBuilder();
  let c = b.stream('topic', { keySerde: str, valueSerde: str }).groupByKey().cogroup(ADDER);
  if (withSecond) c = c.cogroup(b.stream('topic2', { keySerde: str, valueSerde: str }).groupByKey(), REMOVER);
  c.windowedBy(SessionWindows.ofInactivityGapAndGrace(gapMs, 86_400_000 - gapMs))
    .aggregate(() => '0', MERGER, { name: 'agg', valueSerde: str })
    .toStream()
    .to('output', { keySerde: Serdes.windowed(str), valueSerde: str });
  const d = new TopologyTestDriver(b.build(), { cacheMaxBytes: cache });
  const one = d.createInputTopic('topic', { keySerde: str, valueSerde: str });
  const two = withSecond ? d.createInputTopic('topic2', { keySerde: str, valueSerde: str }) : one;
  const read = () => d.createOutputTopic('output', { keySerde: Serdes.windowed(str), valueSerde: str }).readRecordsToList().map((r) => [r.key!.key, r.value, r.timestamp]);
  return { d, one, two, read };
}

test('SessionWindowedCogroupedKStreamImplTest.sessionWindowAggregateTest and sessionWindowAggregate2Test', (t) => {
  let s = sessionCogroup(500, false, 0);
  s.one.pipeInput('k1', 'A', 0);
  s.one.pipeInput('k2', 'A', 0);
  s.one.pipeInput('k1', 'B', 599);
  s.one.pipeInput('k2', 'B', 607);
  t.deepEqual(s.read(), [['k1', '0+A', 0], ['k2', '0+A', 0], ['k1', '0+B', 599], ['k2', '0+B', 607]]);
  s.d.close();
  s = sessionCogroup(500, false, 0);
  s.one.pipeInput('k1', 'A', 0);
  s.one.pipeInput('k1', 'A', 0);
  s.one.pipeInput('k2', 'B', 599);
  s.one.pipeInput('k1', 'B', 607);
  t.deepEqual(s.read(), [['k1', '0+A', 0], ['k1', '0+0+A+A', 0], ['k2', '0+B', 599], ['k1', '0+B', 607]]);
  s.d.close();
});

test('SessionWindowedCogroupedKStreamImplTest.sessionWindowAggregateTest2StreamsTest', (t) => {
  const s = sessionCogroup(100, true, 0);
  for (const ts of [0, 84, 113, 199]) s.one.pipeInput('k1', 'A', ts);
  s.one.pipeInput('k1', 'B', 300);
  s.one.pipeInput('k2', 'B', 301);
  s.one.pipeInput('k2', 'B', 400);
  s.one.pipeInput('k1', 'B', 400);
  t.deepEqual(s.read(), [
    ['k1', '0+A', 0], ['k1', null, 0], ['k1', '0+0+A+A', 84], ['k1', null, 84], ['k1', '0+0+0+A+A+A', 113], ['k1', null, 113],
    ['k1', '0+0+0+0+A+A+A+A', 199], ['k1', '0+B', 300], ['k2', '0+B', 301], ['k2', null, 301], ['k2', '0+0+B+B', 400],
    ['k1', null, 300], ['k1', '0+0+B+B', 400],
  ]);
  s.d.close();
});

test('SessionWindowedCogroupedKStreamImplTest.sessionWindowMixAggregatorsTest and sessionWindowMixAggregatorsManyWindowsTest', (t) => {
  for (const many of [false, true]) {
    const s = sessionCogroup(100, true, 0);
    s.one.pipeInput('k1', 'A', 0);
    s.one.pipeInput('k2', 'A', 0);
    s.one.pipeInput('k2', 'A', 1);
    s.one.pipeInput('k1', 'A', 2);
    s.two.pipeInput('k1', 'B', 3);
    if (many) {
      s.two.pipeInput('k2', 'B', 500);
      s.two.pipeInput('k2', 'B', 501);
      s.two.pipeInput('k1', 'B', 501);
    } else {
      s.two.pipeInput('k2', 'B', 3);
      s.two.pipeInput('k2', 'B', 444);
      s.two.pipeInput('k1', 'B', 444);
    }
    const head = [['k1', '0+A', 0], ['k2', '0+A', 0], ['k2', null, 0], ['k2', '0+0+A+A', 1], ['k1', null, 0], ['k1', '0+0+A+A', 2], ['k1', null, 2], ['k1', '0+0+0+A+A-B', 3]];
    const tail = many
      ? [['k2', '0-B', 500], ['k2', null, 500], ['k2', '0+0-B-B', 501], ['k1', '0-B', 501]]
      : [['k2', null, 1], ['k2', '0+0+0+A+A-B', 3], ['k2', '0-B', 444], ['k1', '0-B', 444]];
    t.deepEqual(s.read(), [...head, ...tail], `many ${many}`);
    s.d.close();
  }
});
