import test from 'ava';
import { Serdes, StreamsBuilder, defaultPartition, type KStream } from '@vltava/dsl';
import { TopologyTestDriver } from './topologyTestDriver.js';

const str = Serdes.string();
const int = Serdes.int64();

/** Builds `in` (string/string) -> f -> `out`, pipes the records and returns what reached `out`. */
function run<K, V>(
  f: (s: KStream<string, string>) => KStream<K, V>,
  input: [string | null, string][],
  out: { keySerde: typeof str | typeof int; valueSerde: typeof str | typeof int } = { keySerde: str, valueSerde: str },
): { key: unknown; value: unknown }[] {
  const b = new StreamsBuilder();
  f(b.stream('in', { keySerde: str, valueSerde: str })).to('out', out as never);
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  for (const [k, v] of input) i.pipeInput(k, v);
  const res = d.createOutputTopic('out', out as never).readKeyValuesToList();
  d.close();
  return res;
}

test('filter and filterNot', (t) => {
  const input: [string, string][] = [['a', 'keep-1'], ['b', 'drop'], ['c', 'keep-2']];
  t.deepEqual(run((s) => s.filter((_k, v) => v.startsWith('keep')), input), [{ key: 'a', value: 'keep-1' }, { key: 'c', value: 'keep-2' }]);
  t.deepEqual(run((s) => s.filterNot((_k, v) => v.startsWith('keep')), input), [{ key: 'b', value: 'drop' }]);
});

test('map, mapValues and selectKey', (t) => {
  t.deepEqual(run((s) => s.map((k, v) => ({ key: v, value: k })), [['k', 'v']]), [{ key: 'v', value: 'k' }]);
  t.deepEqual(
    run((s) => s.mapValues((v, k) => v.length + k.length), [['ab', 'cde']], { keySerde: str, valueSerde: int }),
    [{ key: 'ab', value: 5 }],
  );
  t.deepEqual(run((s) => s.selectKey((_k, v) => v.toUpperCase()), [['x', 'y']]), [{ key: 'Y', value: 'y' }]);
});

test('flatMap and flatMapValues, with arrays and generators', (t) => {
  t.deepEqual(
    run((s) => s.flatMapValues((v) => v.split(',')), [['k', 'a,b,c'], ['j', '']]),
    [{ key: 'k', value: 'a' }, { key: 'k', value: 'b' }, { key: 'k', value: 'c' }, { key: 'j', value: '' }],
  );
  t.deepEqual(
    run((s) =>
      s.flatMap(function* (k, v) {
        for (const c of v) yield { key: `${k}${c}`, value: c };
      }),
    [['k', 'xy']]),
    [{ key: 'kx', value: 'x' }, { key: 'ky', value: 'y' }],
  );
  t.deepEqual(run((s) => s.flatMapValues(() => new Set<string>()), [['k', 'v']]), []);
});

test('peek sees every record and passes it on; foreach is terminal', (t) => {
  const peeked: string[] = [];
  const each: string[] = [];
  const b = new StreamsBuilder();
  const s = b.stream('in', { keySerde: str, valueSerde: str }).peek((k, v) => peeked.push(`${k}=${v}`));
  s.to('out', { keySerde: str, valueSerde: str });
  s.foreach((k, v) => each.push(`${k}:${v}`));
  const d = new TopologyTestDriver(b.build());
  d.createInputTopic('in', { keySerde: str, valueSerde: str }).pipeKeyValueList([{ key: 'a', value: '1' }, { key: 'b', value: '2' }]);
  t.deepEqual(peeked, ['a=1', 'b=2']);
  t.deepEqual(each, ['a:1', 'b:2']);
  t.is(d.createOutputTopic('out', { keySerde: str, valueSerde: str }).getQueueSize(), 2);
});

test('merge interleaves two streams in processing order', (t) => {
  const b = new StreamsBuilder();
  const a = b.stream('a', { keySerde: str, valueSerde: str });
  const c = b.stream('c', { keySerde: str, valueSerde: str });
  a.merge(c).to('out', { keySerde: str, valueSerde: str });
  const d = new TopologyTestDriver(b.build());
  const ia = d.createInputTopic('a', { keySerde: str, valueSerde: str });
  const ic = d.createInputTopic('c', { keySerde: str, valueSerde: str });
  ia.pipeInput('1', 'from-a');
  ic.pipeInput('2', 'from-c');
  ia.pipeInput('3', 'from-a-again');
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: str }).readValuesToList(), ['from-a', 'from-c', 'from-a-again']);
});

test('split routes each record to the first matching named branch, else to the default', (t) => {
  const b = new StreamsBuilder();
  const branches = b
    .stream('in', { keySerde: str, valueSerde: int })
    .split({ name: 'size' })
    .branch((_k, v) => v >= 100, { name: 'large' })
    .branch((_k, v) => v >= 10, { name: 'medium' })
    .defaultBranch({ name: 'small' });
  branches.large.to('large', { valueSerde: int });
  branches.medium.to('medium', { valueSerde: int });
  branches.small.to('small', { valueSerde: int });
  const topo = b.build();
  t.truthy(topo.node('size-large'));
  const d = new TopologyTestDriver(topo);
  d.createInputTopic('in', { keySerde: str, valueSerde: int }).pipeKeyValueList([5, 50, 500, 150, 1].map((v) => ({ key: 'k', value: v })));
  const read = (topic: string): (number | null)[] => d.createOutputTopic(topic, { keySerde: str, valueSerde: int }).readValuesToList();
  t.deepEqual(read('large'), [500, 150]);
  t.deepEqual(read('medium'), [50]);
  t.deepEqual(read('small'), [5, 1]);
});

test('split without a default branch drops unmatched records', (t) => {
  const b = new StreamsBuilder();
  const { even } = b.stream('in', { keySerde: str, valueSerde: int }).split().branch((_k, v) => v % 2 === 0, { name: 'even' }).noDefaultBranch();
  even.to('out', { valueSerde: int });
  const d = new TopologyTestDriver(b.build());
  d.createInputTopic('in', { keySerde: str, valueSerde: int }).pipeKeyValueList([1, 2, 3, 4].map((v) => ({ key: 'k', value: v })));
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: int }).readValuesToList(), [2, 4]);
});

test('to: records are partitioned by murmur2 of the key, or by a custom partitioner', (t) => {
  const b = new StreamsBuilder();
  const s = b.stream('in', { keySerde: str, valueSerde: str });
  s.to('out', { keySerde: str, valueSerde: str });
  s.to('pinned', { keySerde: str, valueSerde: str, partitioner: (_k, v, n) => Number(v) % n });
  const d = new TopologyTestDriver(b.build(), { partitions: { out: 4, pinned: 3 } });
  const keys = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'];
  d.createInputTopic('in', { keySerde: str, valueSerde: str }).pipeKeyValueList(keys.map((k, i) => ({ key: k, value: String(i) })));
  for (const r of d.createOutputTopic('out', { keySerde: str, valueSerde: str }).readRecordsToList()) {
    t.is(r.partition, defaultPartition(Buffer.from(r.key!), 4), `key ${r.key}`);
  }
  t.deepEqual(
    d.createOutputTopic('pinned', { keySerde: str, valueSerde: str }).readRecordsToList().map((r) => r.partition),
    keys.map((_k, i) => i % 3),
  );
});

test('repartition sends records through <appId>-<name>-repartition, partitioned by the new key', (t) => {
  const b = new StreamsBuilder();
  const seen: { key: string; partition: number | undefined }[] = [];
  b.stream('in', { keySerde: str, valueSerde: str })
    .selectKey((_k, v) => v)
    .repartition({ name: 'by-value', keySerde: str, valueSerde: str, numberOfPartitions: 3 })
    .process<string, string>(() => {
      let ctx: import('@vltava/dsl').ProcessorContext<string, string>;
      return {
        init: (c) => void (ctx = c),
        process: (r) => {
          seen.push({ key: r.key, partition: ctx.recordMetadata()?.partition });
          t.is(ctx.recordMetadata()?.topic, 'app-by-value-repartition');
          ctx.forward(r);
        },
      };
    })
    .to('out', { keySerde: str, valueSerde: str });
  const topo = b.build();
  t.is(topo.subtopologies.length, 2);
  const d = new TopologyTestDriver(topo, { applicationId: 'app' });
  t.is(d.partitionsOf('app-by-value-repartition'), 3);
  d.createInputTopic('in', { keySerde: str, valueSerde: str }).pipeValueList(['x', 'y', 'z', 'x']);
  t.is(seen.length, 4);
  for (const s of seen) t.is(s.partition, defaultPartition(Buffer.from(s.key), 3));
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: str }).readKeyValuesToList().map((kv) => kv.key), ['x', 'y', 'z', 'x']);
});

test('record timestamps and headers flow from input to output', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str }).mapValues((v) => v.toUpperCase()).to('out', { keySerde: str, valueSerde: str });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str, startTimestamp: 1000, autoAdvanceMs: 10 });
  i.pipeInput('a', 'x');
  i.pipeInput('b', 'y');
  i.advanceTime(100);
  i.pipeInput('c', 'z');
  i.pipeInput('d', 'w', 5);
  i.pipeRecord({ key: 'e', value: 'v', timestamp: 7, headers: { trace: 'abc' } });
  const out = d.createOutputTopic('out', { keySerde: str, valueSerde: str });
  t.deepEqual(out.readRecordsToList().map((r) => [r.key, r.value, r.timestamp, r.headers?.['trace']]), [
    ['a', 'X', 1000, undefined],
    ['b', 'Y', 1010, undefined],
    ['c', 'Z', 1120, undefined],
    ['d', 'W', 5, undefined],
    ['e', 'V', 7, 'abc'],
  ]);
});
