/**
 * Issue 13, "Kafka Streams semantics, exactly": result timestamps, window boundaries, lateness,
 * outer-join order and foreign-key tombstones, checked against Kafka Streams' processors
 * (streams/src/main/java/org/apache/kafka/streams/kstream/internals/): each test names the
 * Kafka Streams class whose behaviour it reproduces. The expected timestamps are those rules:
 * an aggregation's result carries the largest timestamp of the records that made it.
 */
import test from 'ava';
import { JoinWindows, Serdes, SessionWindows, StreamsBuilder, Suppressed, TimeWindows, type Windowed } from '@vltava/dsl';
import { TopologyTestDriver } from './topologyTestDriver.js';

const str = Serdes.string();
const int = Serdes.int64();
const wstr = Serdes.windowed(str);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = Serdes.json<any>();

const caches = [0, 1 << 20];

// Item 1: KStreamAggregate / KStreamReduce: newTimestamp = max(record, previous result).
test('stream aggregation results carry the max timestamp of their records (KStreamAggregate), cache off and on', (t) => {
  for (const cacheMaxBytes of caches) {
    const b = new StreamsBuilder();
    b.stream('in', { keySerde: str, valueSerde: str }).groupByKey().count({ name: 'c' }).toStream().to('out', { valueSerde: int });
    const d = new TopologyTestDriver(b.build(), { cacheMaxBytes });
    const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
    for (const [k, ts] of [['a', 10], ['a', 5], ['b', 3], ['a', 12], ['a', 7]] as const) i.pipeInput(k, 'x', ts);
    const out = d.createOutputTopic('out', { keySerde: str, valueSerde: int }).readRecordsToList().map((r) => [r.key, r.value, r.timestamp]);
    t.deepEqual(out, [['a', 1, 10], ['a', 2, 10], ['b', 1, 3], ['a', 3, 12], ['a', 4, 12]], `cache ${cacheMaxBytes}`);
    t.deepEqual(d.getTimestampedKeyValueStore<string, number>('c').get('a'), { value: 4, timestamp: 12 });
    d.close();
  }
});

// Item 1: KTableAggregate: the subtractor's record counts too.
test('KGroupedTable aggregation results carry the max of the update and the previous result (KTableAggregate)', (t) => {
  const b = new StreamsBuilder();
  b.table('users', { name: 'users', keySerde: str, valueSerde: str })
    .groupBy((_k, region) => ({ key: region, value: 1 }), { keySerde: str, valueSerde: int })
    .count({ name: 'per-region' })
    .toStream()
    .to('out', { valueSerde: int });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('users', { keySerde: str, valueSerde: str });
  i.pipeInput('alice', 'eu', 20);
  i.pipeInput('bob', 'eu', 5);
  i.pipeInput('alice', 'us', 8); // alice leaves eu (result timestamp max(8, 20)) and joins us
  const out = d.createOutputTopic('out', { keySerde: str, valueSerde: int }).readRecordsToList().map((r) => [r.key, r.value, r.timestamp]);
  t.deepEqual(out, [['eu', 1, 20], ['eu', 2, 20], ['eu', 1, 20], ['us', 1, 8]]);
});

// Item 1: KStreamWindowAggregate: max timestamp within the window; suppress keeps it.
test('time-window aggregation and its suppressed final result carry the max timestamp within the window (KStreamWindowAggregate, KTableSuppressProcessor)', (t) => {
  for (const cacheMaxBytes of caches) {
    const b = new StreamsBuilder();
    const counts = b.stream('in', { keySerde: str, valueSerde: str }).groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(10, 5)).count({ name: 'counts' });
    counts.toStream().to('updates', { valueSerde: int });
    counts.suppress(Suppressed.untilWindowCloses({ name: 'final' })).toStream().to('final', { valueSerde: int });
    const d = new TopologyTestDriver(b.build(), { cacheMaxBytes });
    const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
    for (const ts of [7, 2, 12, 4, 20]) i.pipeInput('a', 'x', ts);
    const read = (topic: string) =>
      d.createOutputTopic<Windowed<string>, number>(topic, { keySerde: wstr, valueSerde: int }).readRecordsToList().map((r) => [r.key!.window.start, r.value, r.timestamp]);
    t.deepEqual(read('updates'), [[0, 1, 7], [0, 2, 7], [10, 1, 12], [0, 3, 7], [20, 1, 20]], `cache ${cacheMaxBytes}`);
    t.deepEqual(read('final'), [[0, 3, 7]], `cache ${cacheMaxBytes}`);
    d.close();
  }
});

// Item 1 (sessions): updates carry the session end; a merged-away session's tombstone carries its own end.
test('session aggregation: updates carry the session end, tombstones of merged sessions the old end (KStreamSessionWindowAggregate)', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str }).groupByKey().windowedBy(SessionWindows.ofInactivityGapAndGrace(5, 100)).count({ name: 's' }).toStream().to('out', { valueSerde: int });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  for (const ts of [0, 10, 5]) i.pipeInput('a', 'x', ts);
  const out = d.createOutputTopic<Windowed<string>, number | null>('out', { keySerde: wstr, valueSerde: int }).readRecordsToList();
  t.deepEqual(out.map((r) => [r.key!.window.start, r.key!.window.end, r.value, r.timestamp]), [
    [0, 0, 1, 0],
    [10, 10, 1, 10],
    [0, 0, null, 0],
    [10, 10, null, 10],
    [0, 10, 3, 10],
  ]);
});

// Item 2: KTableKTableJoin: max of both rows' timestamps.
test('table-table join results carry the max of both rows\' timestamps (KTableKTableJoin / LeftJoin / OuterJoin)', (t) => {
  for (const kind of ['join', 'leftJoin', 'outerJoin'] as const) {
    const b = new StreamsBuilder();
    const l = b.table('l', { name: 'l', keySerde: str, valueSerde: str });
    const r = b.table('r', { name: 'r', keySerde: str, valueSerde: str });
    const j = (x: string | null, y: string | null) => `${x}+${y}`;
    const joined = kind === 'join' ? l.join(r, j, { name: 'j' }) : kind === 'leftJoin' ? l.leftJoin(r, j, { name: 'j' }) : l.outerJoin(r, j, { name: 'j' });
    // The joined table's own getter carries max timestamps too: join it once more with a stream.
    joined.toStream().to('out', { valueSerde: json });
    b.stream('probe', { keySerde: str, valueSerde: str }).join(joined, (p, row) => `${p}:${row}`, { name: 'probe' }).to('probed', { valueSerde: json });
    const d = new TopologyTestDriver(b.build());
    d.createInputTopic('r', { keySerde: str, valueSerde: str }).pipeInput('k', 'R', 50);
    d.createInputTopic('l', { keySerde: str, valueSerde: str }).pipeInput('k', 'L', 10);
    d.createInputTopic('probe', { keySerde: str, valueSerde: str }).pipeInput('k', 'p', 1);
    const out = d.createOutputTopic('out', { keySerde: str, valueSerde: json }).readRecordsToList().map((x) => [x.value, x.timestamp]);
    t.deepEqual(out.at(-1), ['L+R', 50], kind);
    if (kind === 'outerJoin') t.deepEqual(out[0], ['null+R', 50]);
    // A stream-table join result keeps the stream record's timestamp.
    t.deepEqual(d.createOutputTopic('probed', { keySerde: str, valueSerde: json }).readRecordsToList().map((x) => [x.value, x.timestamp]), [['p:L+R', 1]], kind);
    d.close();
  }
});

// Item 6: KStreamSessionWindowAggregate: late when the merged session ends before streamTime - grace - gap.
test('session windows accept records until their session ends before stream time - grace - gap (KStreamSessionWindowAggregate)', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str }).groupByKey().windowedBy(SessionWindows.ofInactivityGapAndGrace(10, 5)).count({ name: 's' }).toStream().to('out', { valueSerde: int });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  i.pipeInput('a', 'x', 100);
  i.pipeInput('b', 'x', 85); // 85 >= 100 - 5 - 10: on time (Vltava used to drop it: 85 < 100 - 5)
  i.pipeInput('c', 'x', 84); // 84 < 85: late
  const out = d.createOutputTopic<Windowed<string>, number>('out', { keySerde: wstr, valueSerde: int }).readRecordsToList();
  t.deepEqual(out.map((r) => [r.key!.key, r.key!.window.start, r.value, r.timestamp]), [['a', 100, 1, 100], ['b', 85, 1, 85]]);
  t.is(d.metrics().droppedByReason.get('late record (window closed)'), 1);
});

// Item 9: EmitStrategy.onWindowClose for sessions emits once streamTime - grace - gap > end.
test("session windows with emitStrategy 'on-window-close' emit when stream time passes end + gap + grace (KStreamSessionWindowAggregate, EmitStrategy.onWindowClose)", (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str })
    .groupByKey()
    .windowedBy(SessionWindows.ofInactivityGapAndGrace(10, 5))
    .count({ name: 's', emitStrategy: 'on-window-close' })
    .toStream()
    .to('out', { valueSerde: int });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  const out = d.createOutputTopic<Windowed<string>, number>('out', { keySerde: wstr, valueSerde: int });
  i.pipeInput('a', 'x', 0);
  i.pipeInput('b', 'x', 15); // 15 - 5 - 10 = 0: not yet past the session end 0
  t.deepEqual(out.readRecordsToList(), []);
  i.pipeInput('b', 'x', 16); // 1 > 0: final
  t.deepEqual(out.readRecordsToList().map((r) => [r.key!.key, r.key!.window.start, r.key!.window.end, r.value, r.timestamp]), [['a', 0, 0, 1, 0]]);
});

// Item 7: the outer-join buffer is ordered by (timestamp, side with right first, key), as TimestampedKeyAndJoinSide.
test('stream-stream outer join: unmatched records of equal timestamps come out right side first (KStreamKStreamJoin outer buffer, TimestampedKeyAndJoinSideSerializer)', (t) => {
  const b = new StreamsBuilder();
  const l = b.stream('left', { keySerde: str, valueSerde: str });
  const r = b.stream('right', { keySerde: str, valueSerde: str });
  l.outerJoin(r, (x: string | null, y: string | null) => `${x}+${y}`, { name: 'lr', windows: JoinWindows.ofTimeDifferenceAndGrace(10, 0) }).to('out', { valueSerde: json });
  const d = new TopologyTestDriver(b.build());
  d.createInputTopic('left', { keySerde: str, valueSerde: str }).pipeInput('a', 'A', 5);
  d.createInputTopic('right', { keySerde: str, valueSerde: str }).pipeInput('b', 'B', 5);
  d.createInputTopic('left', { keySerde: str, valueSerde: str }).pipeInput('z', 'Z', 30);
  const out = d.createOutputTopic('out', { keySerde: str, valueSerde: json }).readRecordsToList().map((x) => [x.key, x.value, x.timestamp]);
  t.deepEqual(out, [['b', 'null+B', 5], ['a', 'A+null', 5]]);
});

// Item 8: SubscriptionSendProcessorSupplier (inner join): tombstones even for rows that never joined.
test('foreign-key inner join emits a tombstone when a left row is deleted or moves to a missing foreign key, joined or not (SubscriptionSendProcessorSupplier)', (t) => {
  const b = new StreamsBuilder();
  const orders = b.table('orders', { name: 'orders', keySerde: str, valueSerde: json });
  const customers = b.table('customers', { name: 'customers', keySerde: str, valueSerde: str });
  orders
    .join(customers, (o: { c: string | null }, c: string) => `${o.c}:${c}`, { name: 'oc', foreignKeyExtractor: (o: { c: string | null }) => o.c })
    .toStream()
    .to('out', { valueSerde: json });
  const d = new TopologyTestDriver(b.build());
  const o = d.createInputTopic('orders', { keySerde: str, valueSerde: json });
  const out = () => d.createOutputTopic('out', { keySerde: str, valueSerde: json }).readRecordsToList().map((x) => [x.key, x.value]);
  o.pipeInput('o1', { c: 'nobody' }, 1); // insert without a right row: nothing
  t.deepEqual(out(), []);
  o.pipeInput('o1', null, 2); // delete: a tombstone although o1 never joined
  t.deepEqual(out(), [['o1', null]]);
  o.pipeInput('o2', { c: 'nobody' }, 3);
  o.pipeInput('o2', { c: 'ghost' }, 4); // foreign key moves to another missing row: tombstone
  t.deepEqual(out(), [['o2', null]]);
  o.pipeInput('o2', { c: 'ghost', n: 1 }, 5); // same foreign key, still no row: nothing
  o.pipeInput('o2', { c: null }, 6); // null foreign key: tombstone
  t.deepEqual(out(), [['o2', null]]);
  o.pipeInput('o3', { c: null }, 7); // insert with a null foreign key: nothing (dropped)
  t.deepEqual(out(), []);
});

// Item 13 (suppress tracks what it emitted) is tested on the processor: packages/dsl/src/suppressProcessor.test.ts.
