/**
 * Global tables through the driver (DSL guide: "GlobalKTable" and "KStream-GlobalKTable Join"):
 * every instance holds the whole table, the stream picks the row with a key mapper, no
 * co-partitioning is needed, and table updates emit nothing.
 */
import test from 'ava';
import { Serdes, StreamsBuilder } from '@vltava/dsl';
import { TopologyTestDriver } from './topologyTestDriver.js';

interface Order {
  readonly product: string | null;
  readonly qty: number;
}

const str = Serdes.string();
const orderSerde = Serdes.json<Order>();
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = Serdes.json<any>();

function topology(left: boolean) {
  const b = new StreamsBuilder();
  const products = b.globalTable('products', { name: 'products', keySerde: str, valueSerde: str });
  const orders = b.stream('orders', { keySerde: str, valueSerde: orderSerde });
  const opts = { name: 'orders-products', keyMapper: (_k: string, o: Order) => o.product };
  const joiner = (o: Order, p: string | null) => `${o.qty}x${p}`;
  (left ? orders.leftJoin(products, joiner, opts) : orders.join(products, joiner, opts)).to('out', { valueSerde: json });
  return b.build();
}

test('the global table is outside every sub-topology and needs no co-partitioning', (t) => {
  const topo = topology(false);
  t.deepEqual(topo.globalTopics(), ['products']);
  t.deepEqual(topo.sourceTopics(), ['orders']);
  t.deepEqual(topo.copartitionGroups, []);
  t.deepEqual(topo.subtopologies.flatMap((s) => s.stores), [], 'the global store is not a task store');
  t.deepEqual(topo.internalTopics('app'), [], 'no changelog: the topic is the changelog');
  t.regex(topo.describe().toString(), /Global table: products \(topic: products\)/);
  t.regex(topo.describe().toMermaid(), /\[\("global store: products"\)\]/);
});

test('stream-global join: the key mapper picks the row; every partition sees the whole table (KStream-GlobalKTable Join)', (t) => {
  const d = new TopologyTestDriver(topology(false), { partitions: { orders: 4, products: 3 } });
  const products = d.createInputTopic<string, string | null>('products', { keySerde: str, valueSerde: str });
  const orders = d.createInputTopic('orders', { keySerde: str, valueSerde: orderSerde });
  products.pipeKeyValueList([
    { key: 'p1', value: 'apple' },
    { key: 'p2', value: 'pear' },
  ]);
  for (let i = 0; i < 8; i++) orders.pipeInput(`o${i}`, { product: i % 2 ? 'p2' : 'p1', qty: i });
  orders.pipeInput('o9', { product: 'p3', qty: 9 }); // no row: no output
  orders.pipeInput('o10', { product: null, qty: 10 }); // null mapped key: dropped
  products.pipeInput('p1', null); // tombstone: no output, row gone
  orders.pipeInput('o11', { product: 'p1', qty: 11 });
  const out = d.createOutputTopic<string, string>('out', { keySerde: str, valueSerde: json }).readKeyValuesToList();
  t.deepEqual(out.map((kv) => kv.value).sort(), ['0xapple', '1xpear', '2xapple', '3xpear', '4xapple', '5xpear', '6xapple', '7xpear']);
  t.is(d.getKeyValueStore<string, string>('products').get('p2'), 'pear');
  t.is(d.getKeyValueStore<string, string>('products').get('p1'), undefined);
  t.is(d.metrics().droppedByReason.get('null key in join'), 1);
});

test('stream-global leftJoin: null when there is no row', (t) => {
  const d = new TopologyTestDriver(topology(true));
  d.createInputTopic('products', { keySerde: str, valueSerde: str }).pipeInput('p1', 'apple');
  const orders = d.createInputTopic('orders', { keySerde: str, valueSerde: orderSerde });
  orders.pipeInput('o1', { product: 'p1', qty: 1 });
  orders.pipeInput('o2', { product: 'zz', qty: 2 });
  orders.pipeInput('o3', { product: null, qty: 3 });
  const out = d.createOutputTopic<string, string>('out', { keySerde: str, valueSerde: json }).readValuesToList();
  t.deepEqual(out, ['1xapple', '2xnull', '3xnull']);
});
