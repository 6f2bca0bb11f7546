import test from 'ava';
import { Serdes, StreamsBuilder, defaultPartition, timestampedSerde } from '@vltava/dsl';
import { TopologyTestDriver } from './topologyTestDriver.js';

const str = Serdes.string();
const int = Serdes.int64();

test('groupByKey().count() emits a running count per key and keeps it in the store', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str }).groupByKey().count({ name: 'counts' }).toStream().to('out', { valueSerde: int });
  const topo = b.build();
  t.is(topo.subtopologies.length, 1, 'no repartition: the key is unchanged');
  const d = new TopologyTestDriver(topo);
  d.createInputTopic('in', { keySerde: str, valueSerde: str }).pipeKeyValueList(['a', 'b', 'a', 'a'].map((k) => ({ key: k, value: 'x' })));
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: int }).readKeyValuesToList(), [
    { key: 'a', value: 1 },
    { key: 'b', value: 1 },
    { key: 'a', value: 2 },
    { key: 'a', value: 3 },
  ]);
  const store = d.getKeyValueStore<string, number>('counts');
  t.is(store.get('a'), 3);
  t.is(store.get('b'), 1);
  t.is(store.get('zzz'), undefined);
});

test('the store is change-logged to <appId>-<name>-changelog', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str }).groupByKey().count({ name: 'counts', keySerde: str });
  const d = new TopologyTestDriver(b.build(), { applicationId: 'wc' });
  d.createInputTopic('in', { keySerde: str, valueSerde: str }).pipeInput('a', 'x');
  // The store is timestamped: its changelog values carry the result's timestamp before the value.
  const changelog = d.createOutputTopic('wc-counts-changelog', { keySerde: str, valueSerde: timestampedSerde(int) });
  t.deepEqual(changelog.readKeyValuesToList(), [{ key: 'a', value: { value: 1, timestamp: 0 } }]);
});

test('reduce and aggregate', (t) => {
  const b = new StreamsBuilder();
  const s = b.stream('in', { keySerde: str, valueSerde: int });
  s.groupByKey().reduce((a, v) => Math.max(a, v), { name: 'max', valueSerde: int }).toStream().to('max', { valueSerde: int });
  s.groupByKey()
    .aggregate(() => ({ n: 0, sum: 0 }), (_k, v, agg) => ({ n: agg.n + 1, sum: agg.sum + v }), { name: 'stats' })
    .mapValues((a) => a.sum / a.n)
    .toStream()
    .to('avg', { valueSerde: Serdes.double() });
  const d = new TopologyTestDriver(b.build());
  d.createInputTopic('in', { keySerde: str, valueSerde: int }).pipeKeyValueList([3, 9, 6].map((v) => ({ key: 'k', value: v })));
  t.deepEqual(d.createOutputTopic('max', { keySerde: str, valueSerde: int }).readValuesToList(), [3, 9, 9]);
  t.deepEqual(d.createOutputTopic('avg', { keySerde: str, valueSerde: Serdes.double() }).readValuesToList(), [3, 6, 6]);
  t.deepEqual(d.getKeyValueStore('stats').get('k'), { n: 3, sum: 18 });
});

test('groupBy repartitions across partitions: each key is counted in exactly one task', (t) => {
  const b = new StreamsBuilder();
  b.stream('words', { keySerde: str, valueSerde: str })
    .groupBy((_k, w) => w, { keySerde: str })
    .count({ name: 'counts' })
    .toStream()
    .to('out', { keySerde: str, valueSerde: int });
  const d = new TopologyTestDriver(b.build(), { defaultPartitions: 4 });
  const words = ['kafka', 'streams', 'vltava', 'kafka', 'prague', 'vltava', 'kafka', 'river', 'x', 'y', 'z'];
  // random-ish input keys spread the words over all 4 input partitions
  d.createInputTopic('words', { keySerde: str, valueSerde: str }).pipeKeyValueList(words.map((w, i) => ({ key: `k${i}`, value: w })));
  const out = d.createOutputTopic('out', { keySerde: str, valueSerde: int }).readRecordsToList();
  const final = new Map(out.map((r) => [r.key, r.value]));
  t.is(final.get('kafka'), 3);
  t.is(final.get('vltava'), 2);
  t.is(final.get('river'), 1);
  for (const r of out) t.is(r.partition, defaultPartition(Buffer.from(r.key!), 4), 'output partition follows the key');
  // every word lives in the store of the task that owns its partition, and only there
  const store = d.getKeyValueStore<string, number>('counts');
  t.is(store.approximateNumEntries(), new Set(words).size);
  t.is(store.get('kafka'), 3);
  t.is(d.metrics().processed, words.length * 2, 'each word processed once upstream and once after the repartition');
});

test('null keys in groupByKey are dropped and counted (as in Kafka Streams)', (t) => {
  const b = new StreamsBuilder();
  b.stream<string | null, string>('in', { keySerde: str, valueSerde: str }).groupByKey().count({ name: 'counts' }).toStream().to('out', { valueSerde: int });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  i.pipeInput(null, 'no key');
  i.pipeInput('a', 'x');
  i.pipeValue('again no key');
  i.pipeInput('b', null);
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: int }).readKeyValuesToList(), [{ key: 'a', value: 1 }]);
  const m = d.metrics();
  t.is(m.dropped, 3);
  t.is(m.droppedByReason.get('null key in aggregation'), 2);
  t.is(m.droppedByReason.get('null value in aggregation'), 1);
});

test('groupByKey after a key-changing operator repartitions', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str })
    .selectKey((_k, v) => v[0]!)
    .groupByKey({ keySerde: str })
    .count({ name: 'by-initial' })
    .toStream()
    .to('out', { keySerde: str, valueSerde: int });
  const topo = b.build();
  t.deepEqual(topo.repartitionTopics.map((r) => r.name), ['by-initial-repartition']);
  const d = new TopologyTestDriver(topo, { defaultPartitions: 2 });
  d.createInputTopic('in', { keySerde: str, valueSerde: str }).pipeKeyValueList(['apple', 'avocado', 'banana'].map((v, i) => ({ key: String(i), value: v })));
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: int }).readKeyValuesToMap(), new Map([['a', 2], ['b', 1]]));
});

test('toTable materializes latest values; null values delete', (t) => {
  const b = new StreamsBuilder();
  b.stream<string, string | null>('in', { keySerde: str, valueSerde: str }).toTable({ name: 'latest' }).toStream().to('out', { keySerde: str, valueSerde: str });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  i.pipeInput('a', '1');
  i.pipeInput('a', '2');
  i.pipeInput('b', '3');
  i.pipeInput('a', null);
  i.pipeInput('zz', null); // deleting an absent key emits nothing
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: str }).readKeyValuesToList(), [
    { key: 'a', value: '1' },
    { key: 'a', value: '2' },
    { key: 'b', value: '3' },
    { key: 'a', value: null },
  ]);
  const store = d.getKeyValueStore<string, string>('latest');
  t.is(store.get('a'), undefined);
  t.is(store.get('b'), '3');
});

test('with a record cache, aggregations emit one update per key per commit (Kafka Streams caching)', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str }).groupByKey().count({ name: 'counts' }).toStream().to('out', { keySerde: str, valueSerde: int });
  b.stream('prices', { keySerde: str, valueSerde: int }).toTable({ name: 'prices' }).filter((_k, v) => v >= 10).toStream().to('expensive', { keySerde: str, valueSerde: int });
  const d = new TopologyTestDriver(b.build(), { cacheMaxBytes: 1 << 20, applicationId: 'cache' });
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  const out = d.createOutputTopic('out', { keySerde: str, valueSerde: int });
  const changelog = d.createOutputTopic('cache-counts-changelog', { keySerde: str, valueSerde: timestampedSerde(int) });
  i.pipeKeyValueList(['a', 'b', 'a', 'a'].map((k) => ({ key: k, value: 'x' }))); // one commit
  t.deepEqual(out.readKeyValuesToList(), [{ key: 'a', value: 3 }, { key: 'b', value: 1 }]);
  t.deepEqual(changelog.readValuesToList().map((v) => v?.value), [3, 1], 'the changelog is collapsed too');
  i.pipeInput('a', 'x'); // next commit
  t.deepEqual(out.readKeyValuesToList(), [{ key: 'a', value: 4 }]);
  // Old values come from the last commit, so a table filter still emits exact tombstones.
  const p = d.createInputTopic('prices', { keySerde: str, valueSerde: int });
  const expensive = d.createOutputTopic('expensive', { keySerde: str, valueSerde: int });
  p.pipeInput('x', 20);
  p.pipeKeyValueList([{ key: 'x', value: 30 }, { key: 'x', value: 5 }]); // 20 -> 5 at commit: leaves the result
  p.pipeKeyValueList([{ key: 'y', value: 1 }, { key: 'y', value: 2 }]); // never in the result: nothing
  t.deepEqual(expensive.readKeyValuesToList(), [{ key: 'x', value: 20 }, { key: 'x', value: null }]);
});

test('toTable after a key change repartitions first; null keys are dropped and counted', (t) => {
  const b = new StreamsBuilder();
  b.stream<string | null, string>('in', { keySerde: str, valueSerde: str })
    .selectKey((_k, v) => (v === 'nokey' ? null : v.split('=')[0]!))
    .mapValues((v) => v.split('=')[1] ?? '')
    .toTable({ name: 'latest', keySerde: str, valueSerde: str })
    .toStream()
    .to('out', { keySerde: str, valueSerde: str });
  const topo = b.build();
  t.deepEqual(topo.repartitionTopics.map((r) => r.name), ['latest-repartition']);
  const d = new TopologyTestDriver(topo, { defaultPartitions: 3 });
  d.createInputTopic('in', { keySerde: str, valueSerde: str }).pipeValueList(['a=1', 'b=2', 'nokey', 'a=3']);
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: str }).readKeyValuesToMap(), new Map([['a', '3'], ['b', '2']]));
  t.is(d.getKeyValueStore<string, string>('latest').get('a'), '3');
  t.is(d.metrics().droppedByReason.get('null key in table'), 1);
});
