import test from 'ava';
import { inspect } from 'node:util';
import { TopologyError } from './errors.js';
import { Serdes } from './serdes.js';
import { Stores } from './storeSpecs.js';
import { StreamsBuilder } from './streamsBuilder.js';

const str = Serdes.string();

function wordCount(): StreamsBuilder {
  const b = new StreamsBuilder();
  b.stream<string, string>('text', { keySerde: str, valueSerde: str })
    .flatMapValues((v) => v.split(' '))
    .groupBy((_k, w) => w, { keySerde: str })
    .count({ name: 'counts' })
    .toStream()
    .to('out', { keySerde: str, valueSerde: Serdes.int64() });
  return b;
}

test('sub-topologies split at repartition topics; internal topics are named after the operator', (t) => {
  const topo = wordCount().build();
  t.is(topo.subtopologies.length, 2);
  t.deepEqual(topo.subtopologies[0]!.sources, [{ name: 'text', internal: false }]);
  t.deepEqual(topo.subtopologies[0]!.sinks, [{ name: 'counts-repartition', internal: true }]);
  t.deepEqual(topo.subtopologies[1]!.stores, ['counts']);
  t.deepEqual(
    topo.internalTopics('app').map((i) => `${i.kind}:${i.name}`),
    ['repartition:app-counts-repartition', 'changelog:app-counts-changelog'],
  );
  t.is(topo.subtopologyFor('app-counts-repartition', 'app')?.id, 1);
  t.deepEqual(topo.sourceTopics(), ['text']);
  t.deepEqual(topo.sinkTopics(), ['out']);
});

test('the topology is immutable', (t) => {
  const topo = wordCount().build();
  t.true(Object.isFrozen(topo));
  t.true(Object.isFrozen(topo.subtopologies));
  t.true(Object.isFrozen(topo.subtopologies[0]!.nodes));
  t.throws(() => (topo.subtopologies as unknown as unknown[]).push({}));
});

test('no repartition when the key is unchanged', (t) => {
  const b = new StreamsBuilder();
  b.stream<string, string>('in').mapValues((v) => v.length).groupByKey().count({ name: 'c' });
  const topo = b.build();
  t.is(topo.subtopologies.length, 1);
  t.is(topo.repartitionTopics.length, 0);
});

test('stateful operators without a name are a TopologyError that says how to fix it', (t) => {
  const b = new StreamsBuilder();
  const g = b.stream<string, string>('in').groupByKey();
  const e = t.throws(() => g.count(undefined as unknown as { name: string }), { instanceOf: TopologyError });
  t.regex(e.message, /count is stateful and needs an explicit name, e\.g\. count\(\{ name: 'word-counts' \}\)/);
  t.throws(() => b.stream('in2').repartition({} as { name: string }), { instanceOf: TopologyError, message: /repartition\(\{ name: 'by-customer' \}\)/ });
  t.throws(() => b.table('t', {} as { name: string }), { instanceOf: TopologyError, message: /needs an explicit name/ });
  t.throws(() => b.stream<string, string>('in3').toTable({} as { name: string }), { instanceOf: TopologyError });
  t.throws(() => b.stream<string, string>('in4').dedupe((k) => k, { retentionMs: 10 } as { name: string; retentionMs: number }), {
    instanceOf: TopologyError,
  });
});

test('invalid names, duplicate stores and double subscriptions are rejected', (t) => {
  const b = new StreamsBuilder();
  const s = b.stream<string, string>('in');
  t.throws(() => s.groupByKey().count({ name: 'has space' }), { instanceOf: TopologyError, message: /\[a-zA-Z0-9._-\]/ });
  s.groupByKey().count({ name: 'c' });
  t.throws(() => s.groupByKey().count({ name: 'c' }), { instanceOf: TopologyError, message: /store named "c" already exists/ });
  t.throws(() => b.stream('in'), { instanceOf: TopologyError, message: /already read by source/ });
  t.throws(() => s.filter('nope' as unknown as () => boolean), { instanceOf: TopologyError, message: /filter: expected a function/ });
  t.throws(() => s.dedupe((k) => k, { name: 'd', retentionMs: 0 }), { message: /retentionMs must be a positive number/ });
});

test('a process() store must be added, and an added store must be used', (t) => {
  const b1 = new StreamsBuilder();
  b1.stream('in').process(() => ({ process() {} }), { stores: ['missing'] });
  t.throws(() => b1.build(), { instanceOf: TopologyError, message: /builder\.addStateStore\(Stores\.keyValueStore\(\{ name: 'missing' \}\)\)/ });
  const b2 = new StreamsBuilder();
  b2.stream('in').foreach(() => {});
  b2.addStateStore(Stores.keyValueStore({ name: 'unused' }));
  t.throws(() => b2.build(), { instanceOf: TopologyError, message: /not used by any processor/ });
  t.throws(() => new StreamsBuilder().build(), { instanceOf: TopologyError, message: /empty/ });
});

test('processors sharing a store run in one sub-topology', (t) => {
  const b = new StreamsBuilder();
  b.addStateStore(Stores.keyValueStore({ name: 'shared' }));
  b.stream('a').process(() => ({ process() {} }), { stores: ['shared'] });
  b.stream('b').process(() => ({ process() {} }), { stores: ['shared'] });
  const topo = b.build();
  t.is(topo.subtopologies.length, 1);
  t.deepEqual(topo.subtopologies[0]!.sources.map((s) => s.name), ['a', 'b']);
});

test('describe() prints text and Mermaid', (t) => {
  const d = wordCount().build().describe();
  const text = d.toString();
  t.regex(text, /Sub-topology: 0\n\s+Source: KSTREAM-SOURCE-0000000000 \(topics: \[text\]\)/);
  t.regex(text, /Sink: counts-repartition-sink \(topic: <appId>-counts-repartition\)/);
  t.regex(text, /Processor: counts \(count; stores: \[counts\]\)/);
  const mermaid = d.toMermaid();
  t.true(mermaid.startsWith('flowchart TD\n'));
  t.regex(mermaid, /subgraph sub1\["Sub-topology 1"\]/);
  t.regex(mermaid, /\[\("store: counts"\)\]/);
  t.regex(mermaid, /topic: #lt;appId#gt;-counts-repartition/);
  t.notRegex(mermaid, /<appId>/);
  t.is(inspect(d), text);
});

test('storeSpecs(subtopology) lists the specs the tasks of a sub-topology open', (t) => {
  const topo = wordCount().build();
  t.deepEqual(topo.storeSpecs(0), []);
  t.deepEqual(topo.storeSpecs(1).map((s) => [s.name, s.kind, s.logging]), [['counts', 'keyValue', true]]);
  t.throws(() => topo.storeSpecs(5), { instanceOf: TopologyError });
});

test('partitionPlan derives task counts and internal topic partitions as Kafka Streams does', (t) => {
  const plan = wordCount().build().partitionPlan('app', (topic) => (topic === 'text' ? 4 : undefined));
  t.deepEqual(plan.tasks, [4, 4]);
  t.deepEqual([...plan.topics], [['text', 4], ['app-counts-repartition', 4], ['app-counts-changelog', 4]]);

  const b = new StreamsBuilder();
  b.stream<string, string>('a').selectKey((_k, v) => v).repartition({ name: 'fixed', numberOfPartitions: 7 }).groupByKey().count({ name: 'n' });
  const fixed = b.build().partitionPlan('app', (topic) => (topic === 'a' ? 2 : undefined));
  t.deepEqual(fixed.tasks, [2, 7]);
  t.is(fixed.topics.get('app-n-changelog'), 7);
  t.throws(() => wordCount().build().partitionPlan('app', () => undefined), { message: /partition count of topic "text" is unknown/ });
});
