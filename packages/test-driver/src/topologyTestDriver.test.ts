import test from 'ava';
import { ConfigError, Serdes, StreamsBuilder, TopologyError, defaultPartition } from '@vltava/dsl';
import { TopologyTestDriver } from './topologyTestDriver.js';

const str = Serdes.string();

function passThrough() {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str }).to('out', { keySerde: str, valueSerde: str });
  return b.build();
}

test('output topic reading API', (t) => {
  const d = new TopologyTestDriver(passThrough());
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  const o = d.createOutputTopic('out', { keySerde: str, valueSerde: str });
  t.true(o.isEmpty());
  t.throws(() => o.readValue(), { message: /Output topic "out" is empty/ });
  i.pipeKeyValueList([
    { key: 'a', value: '1' },
    { key: 'b', value: '2' },
    { key: 'a', value: '3' },
    { key: 'b', value: null },
  ]);
  t.is(o.getQueueSize(), 4);
  t.deepEqual(o.readKeyValue(), { key: 'a', value: '1' });
  t.is(o.readValue(), '2');
  t.is(o.getQueueSize(), 2);
  t.deepEqual(o.readKeyValuesToMap(), new Map([['a', '3']]), 'the tombstone for b removes it');
  i.pipeValueList(['x', 'y'], 100, 5);
  t.deepEqual(o.readRecordsToList().map((r) => [r.key, r.value, r.timestamp]), [[null, 'x', 100], [null, 'y', 105]]);
  i.pipeInput('c', 'z');
  t.deepEqual(o.readRecord().offset, 6);
});

test('input records are routed to partitions by murmur2, null keys round-robin', (t) => {
  const d = new TopologyTestDriver(passThrough(), { partitions: { in: 5, out: 5 } });
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  const o = d.createOutputTopic('out', { keySerde: str, valueSerde: str });
  const keys = Array.from({ length: 30 }, (_, n) => `key-${n}`);
  i.pipeKeyValueList(keys.map((k) => ({ key: k, value: k })));
  const parts = new Set<number>();
  for (const r of o.readRecordsToList()) {
    t.is(r.partition, defaultPartition(Buffer.from(r.key!), 5));
    parts.add(r.partition!);
  }
  t.true(parts.size > 1);
  i.pipeValueList(['a', 'b', 'c', 'd', 'e', 'f']);
  t.deepEqual(o.readRecordsToList().map((r) => r.partition), [0, 1, 2, 3, 4, 0]);
});

test('unknown topics and stores say what exists', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str }).groupByKey().count({ name: 'c' });
  const d = new TopologyTestDriver(b.build());
  t.throws(() => d.createInputTopic('nope', { keySerde: str, valueSerde: str }), { instanceOf: ConfigError, message: /does not read topic "nope"; it reads \[in\]/ });
  t.throws(() => d.getKeyValueStore('x'), { instanceOf: ConfigError, message: /no key-value store "x"; the topology has \[c\]/ });
  t.throws(() => new TopologyTestDriver(b.build(), { partitions: { in: 0 } }), { instanceOf: ConfigError });
});

test('close closes processors; the driver is unusable afterwards', (t) => {
  let closed = 0;
  const b = new StreamsBuilder();
  b.stream('in').process(() => ({ process() {}, close: () => void closed++ }));
  const d = new TopologyTestDriver(b.build(), { defaultPartitions: 3 });
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  d.close();
  t.is(closed, 3, 'one processor instance per task');
  t.throws(() => i.pipeInput('a', 'b'), { message: /closed/ });
});

test('a multi-partition store view routes writes by key', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str }).toTable({ name: 'latest', keySerde: str, valueSerde: str });
  const d = new TopologyTestDriver(b.build(), { defaultPartitions: 4 });
  const store = d.getKeyValueStore<string, string>('latest');
  store.put('k1', 'v1');
  store.put('k2', 'v2');
  t.is(store.get('k1'), 'v1');
  t.is(store.approximateNumEntries(), 2);
  t.deepEqual([...store.all()].map((kv) => kv.key).sort(), ['k1', 'k2']);
  t.is(store.delete('k1'), 'v1');
  t.is(store.get('k1'), undefined);
});

test('co-partitioned topics (recorded by join operators) must have equal partition counts', (t) => {
  const b = new StreamsBuilder();
  b.stream('left', { name: 'left-source' }).merge(b.stream('right', { name: 'right-source' })).foreach(() => {});
  // Joins (next issue) record their two source topics; this is the hook they call.
  (b as unknown as { internal: { copartition(nodes: string[]): void } }).internal.copartition(['left-source', 'right-source']);
  const topology = b.build();
  t.deepEqual(topology.copartitionGroups, [[{ name: 'left', internal: false }, { name: 'right', internal: false }]]);
  t.notThrows(() => new TopologyTestDriver(topology, { defaultPartitions: 3 }).close());
  t.throws(() => new TopologyTestDriver(topology, { partitions: { left: 2, right: 3 } }), {
    instanceOf: TopologyError,
    message: /must be co-partitioned \(equal partition counts\), but got left=2, right=3/,
  });
});

test('producedTopicNames and getStateStore', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str }).groupBy((_k, v) => v).count({ name: 'c' }).toStream().to('out');
  const d = new TopologyTestDriver(b.build(), { applicationId: 'p', defaultPartitions: 2 });
  t.deepEqual(d.producedTopicNames(), []);
  d.createInputTopic('in', { keySerde: str, valueSerde: str }).pipeInput('k', 'v');
  t.deepEqual(d.producedTopicNames().sort(), ['out', 'p-c-changelog', 'p-c-repartition']);
  const owner = defaultPartition(Serdes.msgpack<string>().serialize('v'), 2);
  // The processor API sees the aggregation's timestamped store (value and timestamp of the result).
  t.deepEqual(d.getStateStore<import('@vltava/dsl').KeyValueStore<string, { value: number; timestamp: number }>>('c', owner).get('v'), { value: 1, timestamp: 0 });
  t.throws(() => d.getStateStore('nope'), { instanceOf: ConfigError, message: /no store "nope"/ });
});
