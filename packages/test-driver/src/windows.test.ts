/**
 * Windowed aggregations through the driver. Expected outputs follow Kafka Streams' documented
 * semantics: "Windowing" in the DSL developer guide
 * (https://kafka.apache.org/documentation/streams/developer-guide/dsl-api.html#windowing):
 * tumbling/hopping windows are [start, end), aligned to the epoch; a window accepts records
 * until stream time reaches end + grace; session windows are [first, last] and merge when a
 * record falls within the inactivity gap of two sessions.
 */
import test from 'ava';
import { Serdes, SessionWindows, SlidingWindows, StreamsBuilder, Suppressed, TimeWindows, type Windowed } from '@vltava/dsl';
import type { RecordDroppedEvent } from '@vltava/executor';
import { TopologyTestDriver } from './topologyTestDriver.js';

const str = Serdes.string();
const int = Serdes.int64();
const wstr = Serdes.windowed(str);

type Out = { key: string; start: number; end: number; value: number | null; ts: number };

function read(d: TopologyTestDriver, topic = 'out'): Out[] {
  return d
    .createOutputTopic<Windowed<string>, number>(topic, { keySerde: wstr, valueSerde: int })
    .readRecordsToList()
    .map((r) => ({ key: r.key!.key, start: r.key!.window.start, end: r.key!.window.end, value: r.value, ts: r.timestamp }));
}

function tumbling(graceMs: number, opts: { suppress?: boolean; emitOnClose?: boolean; retentionMs?: number } = {}) {
  const b = new StreamsBuilder();
  let t = b
    .stream('in', { keySerde: str, valueSerde: str })
    .groupByKey()
    .windowedBy(TimeWindows.ofSizeAndGrace(10, graceMs))
    .count({ name: 'counts', ...(opts.emitOnClose ? { emitStrategy: 'on-window-close' as const } : {}), ...(opts.retentionMs ? { retentionMs: opts.retentionMs } : {}) });
  if (opts.suppress) t = t.suppress(Suppressed.untilWindowCloses({ name: 'final-counts' }));
  t.toStream().to('out', { valueSerde: int });
  return b.build();
}

test('tumbling count: records land in [start, end) windows aligned to the epoch (DSL guide: Tumbling time windows)', (t) => {
  const d = new TopologyTestDriver(tumbling(0, { retentionMs: 1000 }));
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  i.pipeInput('a', 'x', 0);
  i.pipeInput('a', 'x', 9); // same window [0,10)
  i.pipeInput('a', 'x', 10); // exactly at window end: next window [10,20)
  i.pipeInput('b', 'x', 12);
  t.deepEqual(read(d), [
    { key: 'a', start: 0, end: 10, value: 1, ts: 0 },
    { key: 'a', start: 0, end: 10, value: 2, ts: 9 },
    { key: 'a', start: 10, end: 20, value: 1, ts: 10 },
    { key: 'b', start: 10, end: 20, value: 1, ts: 12 },
  ]);
  const store = d.getWindowStore<string, number>('counts');
  t.is(store.fetch('a', 0), 2);
  t.is(store.fetch('a', 10), 1);
  t.deepEqual([...store.fetchRange('a', 0, 100)].map((kv) => [kv.key, kv.value]), [[0, 2], [10, 1]]);
  // With the default retention (size + grace), a closed window expires from the store.
  const d2 = new TopologyTestDriver(tumbling(0));
  const i2 = d2.createInputTopic('in', { keySerde: str, valueSerde: str });
  i2.pipeInput('a', 'x', 0);
  t.is(d2.getWindowStore<string, number>('counts').fetch('a', 0), 1);
  i2.pipeInput('a', 'x', 10);
  t.is(d2.getWindowStore<string, number>('counts').fetch('a', 0), undefined);
});

test('hopping windows: a record counts in every window containing it (DSL guide: Hopping time windows)', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str })
    .groupByKey()
    .windowedBy(TimeWindows.ofSizeWithNoGrace(10).advanceBy(5))
    .count({ name: 'counts' })
    .toStream()
    .to('out', { valueSerde: int });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  i.pipeInput('a', 'x', 7); // windows [0,10) and [5,15)
  i.pipeInput('a', 'x', 12); // windows [5,15) and [10,20)
  t.deepEqual(
    read(d).map((o) => [o.start, o.end, o.value]),
    [
      [0, 10, 1],
      [5, 15, 1],
      [5, 15, 2],
      [10, 20, 1],
    ],
  );
});

test('grace: out-of-order records are accepted until stream time reaches end + grace; at and past it they are dropped and counted', (t) => {
  const events: RecordDroppedEvent[] = [];
  const d = new TopologyTestDriver(tumbling(5), { onRecordDropped: (e) => events.push(e) });
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  i.pipeInput('a', 'x', 3); // [0,10)
  i.pipeInput('a', 'x', 14); // stream time 14 < 10 + 5: [0,10) still open
  i.pipeInput('a', 'x', 8); // out of order, accepted
  i.pipeInput('a', 'x', 15); // stream time 15 = end + grace: [0,10) closes
  i.pipeInput('a', 'x', 9); // late: dropped
  t.deepEqual(
    read(d).map((o) => [o.start, o.value]),
    [
      [0, 1],
      [10, 1],
      [0, 2],
      [10, 2],
    ],
  );
  t.is(d.metrics().droppedByReason.get('late record (window closed)'), 1);
  t.is(events.length, 1);
  t.like(events[0], { node: 'counts', reason: 'late record (window closed)', topic: 'in', offset: 4, timestamp: 9, streamTime: 15 });
  t.is(d.getWindowStore<string, number>('counts').fetch('a', 0), 2, 'the late record did not change the window');
});

test('suppress(untilWindowCloses) emits exactly one final result per window, when stream time reaches end + grace', (t) => {
  const d = new TopologyTestDriver(tumbling(5, { suppress: true }));
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  i.pipeInput('a', 'x', 1);
  i.pipeInput('a', 'x', 2);
  i.pipeInput('b', 'x', 4);
  i.pipeInput('a', 'x', 14); // end + grace = 15 not reached
  t.deepEqual(read(d), [], 'nothing before the window closes');
  i.pipeInput('a', 'x', 8); // still accepted (14 < 15)
  i.pipeInput('c', 'x', 15); // stream time 15: [0,10) closes
  t.deepEqual(read(d), [
    { key: 'a', start: 0, end: 10, value: 3, ts: 8 },
    { key: 'b', start: 0, end: 10, value: 1, ts: 4 },
  ]);
  i.pipeInput('a', 'x', 9); // late: dropped, no second result
  i.pipeInput('c', 'x', 30); // closes [10,20)
  t.deepEqual(read(d), [
    { key: 'a', start: 10, end: 20, value: 1, ts: 14 },
    { key: 'c', start: 10, end: 20, value: 1, ts: 15 },
  ]);
});

test("emitStrategy 'on-window-close' is the same as suppress(untilWindowCloses); the buffer is change-logged", (t) => {
  const d = new TopologyTestDriver(tumbling(0, { emitOnClose: true }), { applicationId: 'app' });
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  i.pipeInput('a', 'x', 1);
  i.pipeInput('a', 'x', 9);
  t.deepEqual(read(d), []);
  t.true(d.producedTopicNames().includes('app-counts-suppress-changelog'), 'the suppress buffer writes its changelog');
  i.pipeInput('a', 'x', 10);
  t.deepEqual(read(d), [{ key: 'a', start: 0, end: 10, value: 2, ts: 9 }]);
});

test('windowed count: null keys and null values are dropped and counted', (t) => {
  const d = new TopologyTestDriver(tumbling(0));
  const i = d.createInputTopic<string | null, string | null>('in', { keySerde: str, valueSerde: str });
  i.pipeInput(null, 'x', 1);
  i.pipeInput('a', null, 1);
  t.deepEqual(read(d), []);
  t.is(d.metrics().dropped, 2);
});

test('the windowed table and output key serde carry the window: Serdes.windowed round-trips', (t) => {
  const d = new TopologyTestDriver(tumbling(0));
  d.createInputTopic('in', { keySerde: str, valueSerde: str }).pipeInput('k', 'x', 25);
  const [r] = d.createOutputTopic('out', { keySerde: wstr, valueSerde: int }).readRecordsToList();
  t.deepEqual(r?.key, { key: 'k', window: { start: 20, end: 30 } });
});

function sessions(gap: number, grace: number, suppress = false) {
  const b = new StreamsBuilder();
  let t = b.stream('in', { keySerde: str, valueSerde: str }).groupByKey().windowedBy(SessionWindows.ofInactivityGapAndGrace(gap, grace)).count({ name: 'sessions' });
  if (suppress) t = t.suppress(Suppressed.untilWindowCloses({ name: 'final-sessions' }));
  t.toStream().to('out', { valueSerde: int });
  return b.build();
}

test('session windows: records within the gap extend a session; a bridging record merges two sessions (DSL guide: Session windows)', (t) => {
  const d = new TopologyTestDriver(sessions(5, 100));
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  i.pipeInput('a', 'x', 0); // [0,0]
  i.pipeInput('a', 'x', 5); // gap exactly 5: joins -> [0,5]
  i.pipeInput('a', 'x', 20); // new session [20,20]
  i.pipeInput('a', 'x', 12); // within 5 of 20? no (8); within 5 of 5? no (7): new session [12,12]
  i.pipeInput('a', 'x', 16); // bridges [12,12] and [20,20] -> [12,20]
  t.deepEqual(
    read(d).map((o) => [o.start, o.end, o.value]),
    [
      [0, 0, 1],
      [0, 0, null], // the old session is removed (tombstone) ...
      [0, 5, 2], // ... and replaced by the merged one
      [20, 20, 1],
      [12, 12, 1],
      [12, 12, null],
      [20, 20, null],
      [12, 20, 3],
    ],
  );
  const store = d.getSessionStore<string, number>('sessions');
  t.deepEqual(
    [...store.findSessions('a', 0, 100)].map((kv) => [kv.key.window.start, kv.key.window.end, kv.value]),
    [
      [0, 5, 2],
      [12, 20, 3],
    ],
  );
});

test('session windows: a record for a session closed past grace is dropped; suppress emits each final session once', (t) => {
  const d = new TopologyTestDriver(sessions(5, 2, true));
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  i.pipeInput('a', 'x', 0);
  i.pipeInput('a', 'x', 3); // [0,3]
  i.pipeInput('b', 'x', 9); // stream time 9: [0,3] may still grow until 3 + 5 + 2 = 10
  t.deepEqual(read(d), []);
  i.pipeInput('b', 'x', 10); // stream time 10: session a [0,3] is final
  t.deepEqual(read(d), [{ key: 'a', start: 0, end: 3, value: 2, ts: 3 }]);
  i.pipeInput('a', 'x', 0); // merged window end 3 < close time 10 - 2: late
  t.is(d.metrics().droppedByReason.get('late record (window closed)'), 1);
  i.pipeInput('c', 'x', 100);
  t.deepEqual(read(d), [{ key: 'b', start: 9, end: 10, value: 2, ts: 10 }]);
});

test('session reduce and aggregate with a merger', (t) => {
  const b = new StreamsBuilder();
  const g = b.stream('in', { keySerde: str, valueSerde: int }).groupByKey().windowedBy(SessionWindows.ofInactivityGapAndGrace(10, 20));
  g.reduce((a, v) => a + v, { name: 'sum', valueSerde: int }).toStream().to('sum', { valueSerde: int });
  g.aggregate(() => 0, (_k, v, a) => Math.max(a, v), (_k, a, c) => Math.max(a, c), { name: 'max', valueSerde: int }).toStream().to('max', { valueSerde: int });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: int });
  i.pipeInput('k', 5, 0);
  i.pipeInput('k', 7, 18);
  i.pipeInput('k', 1, 9); // within 10 of both: bridges [0,0] and [18,18]
  // A session's updates carry its end as timestamp (KStreamSessionWindowAggregate).
  t.deepEqual(read(d, 'sum').at(-1), { key: 'k', start: 0, end: 18, value: 13, ts: 18 });
  t.deepEqual(read(d, 'max').at(-1), { key: 'k', start: 0, end: 18, value: 7, ts: 18 });
});

test('windowed aggregation after a key change repartitions first', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str })
    .groupBy((_k, v) => v, { keySerde: str })
    .windowedBy(TimeWindows.ofSizeWithNoGrace(100))
    .count({ name: 'by-value' })
    .toStream()
    .to('out', { valueSerde: int });
  const topo = b.build();
  t.is(topo.subtopologies.length, 2);
  const d = new TopologyTestDriver(topo, { defaultPartitions: 3 });
  d.createInputTopic('in', { keySerde: str, valueSerde: str }).pipeKeyValueList(['x', 'y', 'x', 'x'].map((v, n) => ({ key: `k${n}`, value: v })), 10);
  const out = read(d);
  t.is(out.filter((o) => o.key === 'x').at(-1)?.value, 3);
  t.is(out.filter((o) => o.key === 'y').at(-1)?.value, 1);
});

test('window specs validate their arguments and windowed operators require a name', (t) => {
  t.throws(() => TimeWindows.ofSizeAndGrace(0, 0), { message: /sizeMs must be a positive integer/ });
  t.throws(() => TimeWindows.ofSizeWithNoGrace(10).advanceBy(11), { message: /must not exceed the window size/ });
  t.throws(() => SessionWindows.ofInactivityGapAndGrace(5, -1), { message: /graceMs must be a non-negative/ });
  const b = new StreamsBuilder();
  const w = b.stream('in').groupByKey().windowedBy(TimeWindows.ofSizeWithNoGrace(10));
  t.throws(() => w.count({} as never), { message: /needs an explicit name/ });
  t.throws(() => w.count({ name: 'c', retentionMs: 5 }), { message: /retentionMs \(5\) must be at least/ });
  const table = b.table('t', { name: 't' });
  t.throws(() => (table as never as { suppress(s: unknown): unknown }).suppress(Suppressed.untilWindowCloses({ name: 's' })), { message: /not a windowed aggregation/ });
});

function sliding(d: number, grace: number, emitOnClose = false) {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str })
    .groupByKey()
    .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(d, grace))
    .count({ name: 'sliding', ...(emitOnClose ? { emitStrategy: 'on-window-close' as const } : {}) })
    .toStream()
    .to('out', { valueSerde: int });
  return b.build();
}

// Sliding windows: ported from Kafka Streams' KStreamSlidingWindowAggregateTest in ksSlidingWindows.test.ts.

test('windowed changelogs expire by time too: retention.ms = store retention + 1 day', (t) => {
  const topo = tumbling(5, { retentionMs: 60_000 });
  const changelog = topo.internalTopics('app').find((x) => x.name === 'app-counts-changelog');
  t.deepEqual(changelog?.config, { 'cleanup.policy': 'compact,delete', 'retention.ms': String(60_000 + 86_400_000) });
});

test('hopping windows: a record can be late for some of its windows and on time for others (each closed window counts once)', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str })
    .groupByKey()
    .windowedBy(TimeWindows.ofSizeWithNoGrace(10).advanceBy(5))
    .count({ name: 'counts' })
    .toStream()
    .to('out', { valueSerde: int });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  i.pipeInput('a', 'x', 12); // [5,15) and [10,20)
  i.pipeInput('a', 'x', 16); // [10,20) and [15,25); stream time 16
  read(d);
  i.pipeInput('a', 'x', 14); // [5,15) closed (15 <= 16): late; [10,20) open: counted
  t.deepEqual(read(d).map((o) => [o.start, o.value]), [[10, 3]]);
  t.is(d.metrics().droppedByReason.get('late record (window closed)'), 1);
  i.pipeInput('a', 'x', 9); // [0,10) and [5,15) both closed
  t.deepEqual(read(d), []);
  t.is(d.metrics().droppedByReason.get('late record (window closed)'), 3);
});

test('session and sliding windows drop null keys and null values (tombstones) and count them', (t) => {
  for (const topo of [sessions(5, 0), sliding(10, 0)]) {
    const d = new TopologyTestDriver(topo);
    const i = d.createInputTopic<string | null, string | null>('in', { keySerde: str, valueSerde: str });
    i.pipeInput(null, 'x', 1);
    i.pipeInput('a', null, 2);
    t.deepEqual(read(d), []);
    t.is(d.metrics().dropped, 2);
  }
});
