import test from 'ava';
import { Serdes, StreamsBuilder } from '@vltava/dsl';
import { TopologyTestDriver } from './topologyTestDriver.js';

const str = Serdes.string();
const int = Serdes.int64();

test('table() materializes the topic and toStream() emits updates and tombstones', (t) => {
  const b = new StreamsBuilder();
  b.table('prices', { name: 'prices', keySerde: str, valueSerde: int }).toStream().to('out', { keySerde: str, valueSerde: int });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('prices', { keySerde: str, valueSerde: int });
  i.pipeInput('apple', 3);
  i.pipeInput('apple', 4);
  i.pipeInput('apple', null);
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: int }).readKeyValuesToList(), [
    { key: 'apple', value: 3 },
    { key: 'apple', value: 4 },
    { key: 'apple', value: null },
  ]);
  t.is(d.getKeyValueStore('prices').get('apple'), undefined);
});

test('KTable.filter emits a tombstone when a row stops matching, and nothing for rows never in the result', (t) => {
  const b = new StreamsBuilder();
  b.table('prices', { name: 'prices', keySerde: str, valueSerde: int })
    .filter((_k, v) => v >= 10)
    .toStream()
    .to('expensive', { keySerde: str, valueSerde: int });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('prices', { keySerde: str, valueSerde: int });
  i.pipeInput('a', 12); // enters
  i.pipeInput('a', 15); // update
  i.pipeInput('a', 5); // leaves: tombstone
  i.pipeInput('b', 1); // never matched: nothing
  i.pipeInput('b', 2); // still not: nothing
  i.pipeInput('c', 20); // enters
  i.pipeInput('c', null); // deleted: tombstone
  t.deepEqual(d.createOutputTopic('expensive', { keySerde: str, valueSerde: int }).readKeyValuesToList(), [
    { key: 'a', value: 12 },
    { key: 'a', value: 15 },
    { key: 'a', value: null },
    { key: 'c', value: 20 },
    { key: 'c', value: null },
  ]);
});

test('KTable.filterNot and mapValues', (t) => {
  const b = new StreamsBuilder();
  b.table('t', { name: 't', keySerde: str, valueSerde: int })
    .filterNot((_k, v) => v < 0)
    .mapValues((v, k) => `${k}=${v}`)
    .toStream()
    .to('out', { keySerde: str, valueSerde: str });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('t', { keySerde: str, valueSerde: int });
  i.pipeInput('x', 1);
  i.pipeInput('x', -1);
  i.pipeInput('y', -5);
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: str }).readKeyValuesToList(), [
    { key: 'x', value: 'x=1' },
    { key: 'x', value: null },
  ]);
});

test('KTable.groupBy aggregate uses the adder for new rows and the subtractor for replaced ones', (t) => {
  interface User {
    region: string;
    age: number;
  }
  const b = new StreamsBuilder();
  const users = b.table('users', { name: 'users', keySerde: str, valueSerde: Serdes.json<User>() });
  const grouped = users.groupBy((_id, u) => ({ key: u.region, value: u.age }), { keySerde: str, valueSerde: int });
  grouped.count({ name: 'users-per-region' }).toStream().to('counts', { keySerde: str, valueSerde: int });
  grouped
    .aggregate(() => 0, (_r, age, sum) => sum + age, (_r, age, sum) => sum - age, { name: 'age-sum', valueSerde: int })
    .toStream()
    .to('sums', { keySerde: str, valueSerde: int });
  const d = new TopologyTestDriver(b.build(), { defaultPartitions: 3 });
  const i = d.createInputTopic('users', { keySerde: str, valueSerde: Serdes.json<User>() });
  i.pipeInput('alice', { region: 'eu', age: 30 });
  i.pipeInput('bob', { region: 'eu', age: 40 });
  i.pipeInput('carol', { region: 'us', age: 50 });
  i.pipeInput('alice', { region: 'us', age: 31 }); // moves: subtract from eu, add to us
  i.pipeInput('bob', null); // deleted: subtract from eu
  const counts = d.createOutputTopic('counts', { keySerde: str, valueSerde: int }).readKeyValuesToMap();
  t.deepEqual(counts, new Map([['eu', 0], ['us', 2]]));
  const sums = d.createOutputTopic('sums', { keySerde: str, valueSerde: int }).readKeyValuesToList();
  t.deepEqual(sums.at(-1), { key: 'eu', value: 0 });
  t.deepEqual(sums.filter((s) => s.key === 'us').map((s) => s.value), [50, 81]);
  t.is(d.getKeyValueStore('age-sum').get('us'), 81);
  t.is(d.getKeyValueStore('users-per-region').get('eu'), 0);
});

test('KGroupedTable.reduce with adder and subtractor', (t) => {
  const b = new StreamsBuilder();
  b.table('stock', { name: 'stock', keySerde: str, valueSerde: Serdes.json<{ shop: string; qty: number }>() })
    .groupBy((_sku, s) => ({ key: s.shop, value: s.qty }), { keySerde: str, valueSerde: int })
    .reduce((a, v) => a + v, (a, v) => a - v, { name: 'qty-per-shop', valueSerde: int })
    .toStream()
    .to('out', { keySerde: str, valueSerde: int });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('stock', { keySerde: str, valueSerde: Serdes.json<{ shop: string; qty: number }>() });
  i.pipeInput('sku1', { shop: 'A', qty: 5 });
  i.pipeInput('sku2', { shop: 'A', qty: 7 });
  i.pipeInput('sku1', { shop: 'A', qty: 2 });
  // sku1 5 -> 2 stays in shop A: one update (12 - 5 + 2), no intermediate 7
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: int }).readValuesToList(), [5, 12, 9]);
});
