/**
 * Joins through the driver. Expected outputs follow Kafka Streams' documented join semantics:
 * "Joining" in the DSL developer guide
 * (https://kafka.apache.org/documentation/streams/developer-guide/dsl-api.html#joining),
 * sections KStream-KTable Join, KStream-KStream Join and KTable-KTable Equi-Join, with the
 * KIP-962 null-key rules for left joins and the spurious-result fix (KAFKA-10847) for
 * stream-stream left/outer joins.
 */
import test from 'ava';
import { JoinWindows, Serdes, StreamsBuilder, TimeWindows, TopologyError } from '@vltava/dsl';
import { TopologyTestDriver } from './topologyTestDriver.js';

const str = Serdes.string();
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = Serdes.json<any>();

function out(d: TopologyTestDriver, topic = 'out') {
  return d.createOutputTopic<string, unknown>(topic, { keySerde: str, valueSerde: json }).readRecordsToList().map((r) => ({ key: r.key, value: r.value, ts: r.timestamp }));
}

// ---------- stream-table ----------

function streamTable(left: boolean) {
  const b = new StreamsBuilder();
  const customers = b.table('customers', { name: 'customers', keySerde: str, valueSerde: str });
  const orders = b.stream<string | null, string>('orders', { keySerde: str, valueSerde: str });
  const joined = left
    ? orders.leftJoin(customers, (order, customer) => `${order}/${customer}`, { name: 'enrich' })
    : orders.join(customers, (order, customer) => `${order}/${customer}`, { name: 'enrich' });
  joined.to('out', { valueSerde: json });
  return b.build();
}

test('stream-table join: each record joins the current table row; table updates emit nothing (KStream-KTable Join)', (t) => {
  const topo = streamTable(false);
  t.deepEqual(topo.copartitionGroups.map((g) => g.map((x) => x.name).sort()), [['customers', 'orders']]);
  const d = new TopologyTestDriver(topo);
  const c = d.createInputTopic('customers', { keySerde: str, valueSerde: str });
  const o = d.createInputTopic<string | null, string | null>('orders', { keySerde: str, valueSerde: str });
  o.pipeInput('alice', 'o1', 1); // no row yet: no output
  c.pipeInput('alice', 'Alice', 2); // table update: no output
  o.pipeInput('alice', 'o2', 3);
  c.pipeInput('alice', 'Alice B.', 4);
  o.pipeInput('alice', 'o3', 5);
  c.pipeInput('alice', null, 6); // tombstone deletes the row
  o.pipeInput('alice', 'o4', 7);
  o.pipeInput(null, 'o5', 8); // null key: dropped by join
  o.pipeInput('alice', null, 9); // null value: dropped
  t.deepEqual(out(d), [
    { key: 'alice', value: 'o2/Alice', ts: 3 },
    { key: 'alice', value: 'o3/Alice B.', ts: 5 },
  ]);
  t.is(d.metrics().droppedByReason.get('null key in join'), 1);
  t.is(d.metrics().droppedByReason.get('null value in join'), 1);
});

test('stream-table leftJoin: every record produces output, with null when the table has no row (KIP-962: null keys too)', (t) => {
  const d = new TopologyTestDriver(streamTable(true));
  const c = d.createInputTopic('customers', { keySerde: str, valueSerde: str });
  const o = d.createInputTopic<string | null, string | null>('orders', { keySerde: str, valueSerde: str });
  o.pipeInput('bob', 'o1', 1);
  c.pipeInput('bob', 'Bob', 2);
  o.pipeInput('bob', 'o2', 3);
  c.pipeInput('bob', null, 4);
  o.pipeInput('bob', 'o3', 5);
  o.pipeInput(null, 'o4', 6);
  o.pipeInput('bob', null, 7); // null value: still dropped
  t.deepEqual(out(d), [
    { key: 'bob', value: 'o1/null', ts: 1 },
    { key: 'bob', value: 'o2/Bob', ts: 3 },
    { key: 'bob', value: 'o3/null', ts: 5 },
    { key: null, value: 'o4/null', ts: 6 },
  ]);
});

test('stream-table join looks up derived tables (filter, mapValues) without materializing them', (t) => {
  const b = new StreamsBuilder();
  const prices = b.table('prices', { name: 'prices', keySerde: str, valueSerde: Serdes.int64() });
  const cheap = prices.filter((_k, p) => p < 100).mapValues((p) => p * 2);
  b.stream('orders', { keySerde: str, valueSerde: str })
    .leftJoin(cheap, (o, p) => ({ o, p }), { name: 'priced' })
    .to('out', { valueSerde: json });
  const d = new TopologyTestDriver(b.build());
  d.createInputTopic('prices', { keySerde: str, valueSerde: Serdes.int64() }).pipeKeyValueList([
    { key: 'x', value: 10 },
    { key: 'y', value: 500 },
  ]);
  d.createInputTopic('orders', { keySerde: str, valueSerde: str }).pipeKeyValueList([
    { key: 'x', value: 'a' },
    { key: 'y', value: 'b' },
  ]);
  t.deepEqual(out(d).map((r) => r.value), [{ o: 'a', p: 20 }, { o: 'b', p: null }]);
});

test('a key-changed stream is repartitioned before a stream-table join', (t) => {
  const b = new StreamsBuilder();
  const users = b.table('users', { name: 'users', keySerde: str, valueSerde: str });
  b.stream('clicks', { keySerde: str, valueSerde: str })
    .selectKey((_k, v) => v)
    .join(users, (click, user) => `${click}:${user}`, { name: 'clicks-users', keySerde: str, valueSerde: str })
    .to('out', { valueSerde: json });
  const topo = b.build();
  t.true(topo.repartitionTopics.some((r) => r.name === 'clicks-users-left-repartition'));
  const d = new TopologyTestDriver(topo, { defaultPartitions: 3 });
  d.createInputTopic('users', { keySerde: str, valueSerde: str }).pipeKeyValueList(['u1', 'u2', 'u3'].map((u) => ({ key: u, value: u.toUpperCase() })));
  d.createInputTopic('clicks', { keySerde: str, valueSerde: str }).pipeKeyValueList(['u1', 'u2', 'u3', 'u1'].map((u, i) => ({ key: `c${i}`, value: u })));
  t.deepEqual(out(d).map((r) => r.value).sort(), ['u1:U1', 'u1:U1', 'u2:U2', 'u3:U3']);
});

test('joining inputs that are not co-partitioned fails in the driver, naming both topics and the fix', (t) => {
  const err = t.throws(() => new TopologyTestDriver(streamTable(false), { partitions: { orders: 3, customers: 2 } }), { instanceOf: TopologyError });
  t.regex(err.message, /orders=3/);
  t.regex(err.message, /customers=2/);
  t.regex(err.message, /repartition\(\{ name, numberOfPartitions \}\)/);
});

test('joins are stateful and need a name', (t) => {
  const b = new StreamsBuilder();
  const s = b.stream<string, string>('a');
  const tbl = b.table<string, string>('b', { name: 'b' });
  t.throws(() => s.join(tbl, (x, y) => [x, y], {} as never), { instanceOf: TopologyError, message: /needs an explicit name/ });
  t.throws(() => s.join(b.stream<string, string>('c'), (x, y) => [x, y], { name: 'j' } as never), { instanceOf: TopologyError, message: /needs windows/ });
  t.throws(() => tbl.join(tbl, (x, y) => [x, y], {} as never), { instanceOf: TopologyError, message: /needs an explicit name/ });
});

// ---------- stream-stream ----------

function streamStream(kind: 'join' | 'leftJoin' | 'outerJoin', windows: JoinWindows) {
  const b = new StreamsBuilder();
  const l = b.stream<string | null, string>('left', { keySerde: str, valueSerde: str });
  const r = b.stream<string | null, string>('right', { keySerde: str, valueSerde: str });
  const joiner = (a: string | null, c: string | null) => `${a}+${c}`;
  const opts = { name: 'lr', windows };
  (kind === 'join' ? l.join(r, joiner, opts) : kind === 'leftJoin' ? l.leftJoin(r, joiner, opts) : l.outerJoin(r, joiner, opts)).to('out', { valueSerde: json });
  return b.build();
}

function inputs(d: TopologyTestDriver) {
  return {
    l: d.createInputTopic<string | null, string | null>('left', { keySerde: str, valueSerde: str }),
    r: d.createInputTopic<string | null, string | null>('right', { keySerde: str, valueSerde: str }),
  };
}

test('stream-stream join: records join when |t1 - t2| <= time difference, window bounds inclusive (KStream-KStream Join)', (t) => {
  const topo = streamStream('join', JoinWindows.ofTimeDifferenceAndGrace(10, 100));
  t.deepEqual(topo.copartitionGroups.map((g) => g.map((x) => x.name).sort()), [['left', 'right']]);
  const d = new TopologyTestDriver(topo);
  const { l, r } = inputs(d);
  l.pipeInput('k', 'L1', 20);
  r.pipeInput('k', 'R1', 30); // 30 - 20 = 10: inside
  r.pipeInput('k', 'R2', 31); // 11: outside
  r.pipeInput('k', 'R3', 10); // out of order, 20 - 10 = 10: inside
  l.pipeInput('k', 'L2', 25); // joins R1 (5), R2 (6), R3 (15: outside)
  r.pipeInput('x', 'R4', 25); // other key: nothing
  t.deepEqual(out(d), [
    { key: 'k', value: 'L1+R1', ts: 30 },
    { key: 'k', value: 'L1+R3', ts: 20 },
    { key: 'k', value: 'L2+R1', ts: 30 },
    { key: 'k', value: 'L2+R2', ts: 31 },
  ]);
  t.truthy(d.getWindowStore('lr-this-join-store'));
  t.truthy(d.getWindowStore('lr-other-join-store'));
});

test('stream-stream join with before/after: asymmetric windows', (t) => {
  // A left record at t joins right records in [t - 2, t + 5].
  const d = new TopologyTestDriver(streamStream('join', JoinWindows.ofTimeDifferenceAndGrace(0, 100).before(2).after(5)));
  const { l, r } = inputs(d);
  l.pipeInput('k', 'L', 10);
  for (const ts of [7, 8, 15, 16]) r.pipeInput('k', `R${ts}`, ts);
  t.deepEqual(out(d).map((o) => o.value), ['L+R8', 'L+R15']);
});

test('stream-stream join: duplicate (key, timestamp) records are all kept and joined', (t) => {
  const d = new TopologyTestDriver(streamStream('join', JoinWindows.ofTimeDifferenceWithNoGrace(5)));
  const { l, r } = inputs(d);
  l.pipeInput('k', 'L1', 1);
  l.pipeInput('k', 'L2', 1);
  r.pipeInput('k', 'R', 1);
  t.deepEqual(out(d).map((o) => o.value), ['L1+R', 'L2+R']);
});

test('stream-stream leftJoin: an unmatched left record is emitted with null only after its window closes, never early', (t) => {
  // window: [t - 10, t + 10], grace 5: a left record at 0 closes when stream time passes 0 + 10 + 5.
  const d = new TopologyTestDriver(streamStream('leftJoin', JoinWindows.ofTimeDifferenceAndGrace(10, 5)));
  const { l, r } = inputs(d);
  l.pipeInput('a', 'A', 0);
  l.pipeInput('b', 'B', 1);
  r.pipeInput('b', 'RB', 8); // B matches: no null result for B, ever
  l.pipeInput('z', 'Z', 15); // stream time 15 = 0 + 10 + 5: A's window is still open
  t.deepEqual(out(d), [{ key: 'b', value: 'B+RB', ts: 8 }]);
  l.pipeInput('z', 'Z2', 16); // stream time 16: A's window closed
  t.deepEqual(out(d), [{ key: 'a', value: 'A+null', ts: 0 }]);
  // RA's own window [9 - 10, 9 + 10] is still open (closes at 9 + 10 + 5), so it joins the buffered A:
  // Kafka Streams emits the inner result too; only A's null result had to wait for A's window.
  r.pipeInput('a', 'RA', 9);
  l.pipeInput('z', 'Z3', 40);
  t.deepEqual(out(d), [
    { key: 'a', value: 'A+RA', ts: 9 },
    { key: 'z', value: 'Z+null', ts: 15 },
    { key: 'z', value: 'Z2+null', ts: 16 },
  ]);
});

test('stream-stream leftJoin: a match arriving within grace prevents the null result', (t) => {
  const d = new TopologyTestDriver(streamStream('leftJoin', JoinWindows.ofTimeDifferenceAndGrace(10, 5)));
  const { l, r } = inputs(d);
  l.pipeInput('a', 'A', 0);
  l.pipeInput('z', 'Z', 14); // stream time 14
  r.pipeInput('a', 'RA', 10); // out of order, within the window of A and before it closes
  l.pipeInput('z', 'Z2', 100);
  const values = out(d).map((o) => o.value);
  t.true(values.includes('A+RA'));
  t.false(values.includes('A+null'));
});

test('stream-stream outerJoin: unmatched records of both sides are emitted once their windows close', (t) => {
  const d = new TopologyTestDriver(streamStream('outerJoin', JoinWindows.ofTimeDifferenceWithNoGrace(5)));
  const { l, r } = inputs(d);
  l.pipeInput('a', 'A', 0);
  r.pipeInput('b', 'B', 1);
  r.pipeInput('c', 'C', 3);
  l.pipeInput('c', 'LC', 4); // matches C
  t.deepEqual(out(d), [{ key: 'c', value: 'LC+C', ts: 4 }]);
  r.pipeInput('q', 'Q', 6); // stream time 6 > 0 + 5: A closes; B (1 + 5 = 6) not yet
  t.deepEqual(out(d), [{ key: 'a', value: 'A+null', ts: 0 }]);
  l.pipeInput('q', 'LQ', 7); // matches Q; stream time 7 > 6: B closes
  t.deepEqual(out(d), [
    { key: 'b', value: 'null+B', ts: 1 },
    { key: 'q', value: 'LQ+Q', ts: 7 },
  ]);
});

test('stream-stream joins: null keys and values (KIP-962: outer sides emit null-key records at once)', (t) => {
  const d = new TopologyTestDriver(streamStream('leftJoin', JoinWindows.ofTimeDifferenceWithNoGrace(5)));
  const { l, r } = inputs(d);
  l.pipeInput(null, 'N', 1); // left side of a left join: emitted at once
  r.pipeInput(null, 'RN', 1); // right side of a left join: dropped
  l.pipeInput('k', null, 1); // null value: dropped
  t.deepEqual(out(d), [{ key: null, value: 'N+null', ts: 1 }]);
  t.is(d.metrics().droppedByReason.get('null key in join'), 1);
  t.is(d.metrics().droppedByReason.get('null value in join'), 1);
});

test('stream-stream join: a record older than the retention is not buffered and counted as late', (t) => {
  const d = new TopologyTestDriver(streamStream('join', JoinWindows.ofTimeDifferenceWithNoGrace(5)));
  const { l, r } = inputs(d);
  l.pipeInput('k', 'L', 100);
  r.pipeInput('k', 'R', 50); // far outside: no join, not buffered
  l.pipeInput('k', 'L2', 52); // would match R if it had been kept
  t.deepEqual(out(d), []);
  t.is(d.metrics().droppedByReason.get('late record (join window closed)'), 2);
});

// ---------- table-table ----------

function tableTable(kind: 'join' | 'leftJoin' | 'outerJoin') {
  const b = new StreamsBuilder();
  const l = b.table('lt', { name: 'lt', keySerde: str, valueSerde: str });
  const r = b.table('rt', { name: 'rt', keySerde: str, valueSerde: str });
  const j = (a: string | null, c: string | null) => `${a}+${c}`;
  const res = kind === 'join' ? l.join(r, j, { name: 'tt' }) : kind === 'leftJoin' ? l.leftJoin(r, j, { name: 'tt' }) : l.outerJoin(r, j, { name: 'tt' });
  res.toStream().to('out', { valueSerde: json });
  return b.build();
}

function tables(d: TopologyTestDriver) {
  return {
    l: d.createInputTopic<string, string | null>('lt', { keySerde: str, valueSerde: str }),
    r: d.createInputTopic<string, string | null>('rt', { keySerde: str, valueSerde: str }),
  };
}

// The table in the guide's "KTable-KTable Equi-Join" section: updates of either side re-join; a
// tombstone on either side deletes the inner-join row.
test('table-table join: a row where both sides have one; either tombstone deletes it (KTable-KTable Equi-Join)', (t) => {
  const d = new TopologyTestDriver(tableTable('join'));
  const { l, r } = tables(d);
  l.pipeInput('k', 'A', 1); // no right row: nothing
  r.pipeInput('k', 'a', 2);
  l.pipeInput('k', 'B', 3);
  r.pipeInput('k', null, 4); // delete right: tombstone
  r.pipeInput('k', 'b', 5);
  l.pipeInput('k', null, 6); // delete left: tombstone
  l.pipeInput('x', 'X', 7); // no right row for x
  t.deepEqual(out(d).map((o) => o.value), ['A+a', 'B+a', null, 'B+b', null]);
});

test('table-table leftJoin: every left row, the right value or null', (t) => {
  const d = new TopologyTestDriver(tableTable('leftJoin'));
  const { l, r } = tables(d);
  l.pipeInput('k', 'A', 1);
  r.pipeInput('k', 'a', 2);
  r.pipeInput('k', null, 3);
  r.pipeInput('q', 'q', 4); // no left row: nothing
  l.pipeInput('k', null, 5);
  t.deepEqual(out(d).map((o) => o.value), ['A+null', 'A+a', 'A+null', null]);
});

test('table-table outerJoin: a row wherever either side has one', (t) => {
  const d = new TopologyTestDriver(tableTable('outerJoin'));
  const { l, r } = tables(d);
  r.pipeInput('k', 'a', 1);
  l.pipeInput('k', 'A', 2);
  r.pipeInput('k', null, 3);
  l.pipeInput('k', null, 4);
  t.deepEqual(out(d).map((o) => o.value), ['null+a', 'A+a', 'A+null', null]);
});

test('a table-table join result can be joined again (value getters compose)', (t) => {
  const b = new StreamsBuilder();
  const l = b.table('lt', { name: 'lt', keySerde: str, valueSerde: str });
  const r = b.table('rt', { name: 'rt', keySerde: str, valueSerde: str });
  const both = l.join(r, (a, c) => `${a}${c}`, { name: 'tt' });
  b.stream('s', { keySerde: str, valueSerde: str })
    .leftJoin(both, (v, x) => `${v}:${x}`, { name: 'st' })
    .to('out', { valueSerde: json });
  const d = new TopologyTestDriver(b.build());
  const { l: li, r: ri } = tables(d);
  const s = d.createInputTopic('s', { keySerde: str, valueSerde: str });
  li.pipeInput('k', 'A');
  s.pipeInput('k', 's1');
  ri.pipeInput('k', 'a');
  s.pipeInput('k', 's2');
  t.deepEqual(out(d).map((o) => o.value), ['s1:null', 's2:Aa']);
});

test('stream-stream join state is per task: two drivers of one topology and several partitions do not interfere', (t) => {
  const topo = streamStream('leftJoin', JoinWindows.ofTimeDifferenceWithNoGrace(5));
  const d1 = new TopologyTestDriver(topo, { defaultPartitions: 2 });
  const d2 = new TopologyTestDriver(topo, { defaultPartitions: 2 });
  const a = inputs(d1);
  const b = inputs(d2);
  a.l.pipeInput('k', 'A', 0);
  b.l.pipeInput('k', 'B', 100); // stream time of d2 only
  a.r.pipeInput('k', 'RA', 3);
  t.deepEqual(out(d1), [{ key: 'k', value: 'A+RA', ts: 3 }]);
  t.deepEqual(out(d2), []);
  // Keys on other partitions advance only their own task's stream time.
  for (const key of ['x1', 'x2', 'x3', 'x4']) a.l.pipeInput(key, key, 50);
  const results = out(d1).map((r) => r.value).sort();
  t.deepEqual(results, [], 'each x record is the newest in its task: its own window is still open');
  d1.close();
  d2.close();
});

test('windowed tables join on (key, window): clicks and views per minute', (t) => {
  const b = new StreamsBuilder();
  const w = TimeWindows.ofSizeWithNoGrace(60_000);
  const clicks = b.stream('clicks', { keySerde: str, valueSerde: str }).groupByKey().windowedBy(w).count({ name: 'clicks-per-min' });
  const views = b.stream('views', { keySerde: str, valueSerde: str }).groupByKey().windowedBy(w).count({ name: 'views-per-min' });
  clicks
    .join(views, (c, v) => `${c}/${v}`, { name: 'ctr' })
    .toStream()
    .to('out', { keySerde: Serdes.windowed(str), valueSerde: json });
  const d = new TopologyTestDriver(b.build());
  const c = d.createInputTopic('clicks', { keySerde: str, valueSerde: str });
  const v = d.createInputTopic('views', { keySerde: str, valueSerde: str });
  v.pipeInput('page', 'x', 1_000);
  v.pipeInput('page', 'x', 2_000);
  c.pipeInput('page', 'x', 3_000);
  v.pipeInput('page', 'x', 61_000); // next minute: no clicks there
  const out = d.createOutputTopic('out', { keySerde: Serdes.windowed(str), valueSerde: json }).readKeyValuesToList();
  t.deepEqual(out, [{ key: { key: 'page', window: { start: 0, end: 60_000 } }, value: '1/2' }]);
});
