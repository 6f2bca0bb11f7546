/**
 * Foreign-key table-table joins through the driver. Expected outputs follow KIP-213 ("Support
 * non-key joining in KTable") and the DSL guide's "KTable-KTable Foreign-Key Join" section:
 * the result is keyed by the left table's key, updates when either side changes, follows the
 * left row when its foreign key changes, and is deleted when the left row is (or, for the inner
 * join, when the right row is).
 */
import { createHash } from 'node:crypto';
import test from 'ava';
import { Serdes, StreamsBuilder } from '@vltava/dsl';
import { TopologyTestDriver } from './topologyTestDriver.js';

interface Order {
  readonly customer: string | null;
  readonly amount: number;
}

const str = Serdes.string();
const orderSerde = Serdes.json<Order>();
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = Serdes.json<any>();

function topology(left: boolean) {
  const b = new StreamsBuilder();
  const orders = b.table('orders', { name: 'orders', keySerde: str, valueSerde: orderSerde });
  const customers = b.table('customers', { name: 'customers', keySerde: str, valueSerde: str });
  const opts = { name: 'orders-customers', foreignKeyExtractor: (o: Order) => o.customer };
  const joiner = (o: Order, c: string | null) => `${o.amount}@${c}`;
  const result = left ? orders.leftJoin(customers, joiner, opts) : orders.join(customers, joiner, opts);
  result.toStream().to('out', { valueSerde: json });
  return b.build();
}

function run(left: boolean, config: ConstructorParameters<typeof TopologyTestDriver>[1] = {}) {
  const d = new TopologyTestDriver(topology(left), config);
  const orders = d.createInputTopic<string, Order | null>('orders', { keySerde: str, valueSerde: orderSerde });
  const customers = d.createInputTopic<string, string | null>('customers', { keySerde: str, valueSerde: str });
  const out = () => d.createOutputTopic<string, string>('out', { keySerde: str, valueSerde: json }).readKeyValuesToList();
  return { d, orders, customers, out };
}

test('the subscription and response topics are internal repartition-kind topics; each pair of inputs is co-partitioned', (t) => {
  const topo = topology(false);
  const internal = topo.internalTopics('app').filter((x) => x.kind === 'repartition').map((x) => x.name).sort();
  t.deepEqual(internal, ['app-orders-customers-subscription-registration-topic', 'app-orders-customers-subscription-response-topic']);
  const groups = topo.copartitionGroups.map((g) => g.map((x) => x.name).sort());
  t.deepEqual(groups, [
    ['customers', 'orders-customers-subscription-registration-topic'],
    ['orders', 'orders-customers-subscription-response-topic'],
  ]);
  const plan = topo.partitionPlan('app', (name) => ({ orders: 3, customers: 2 })[name]);
  t.is(plan.topics.get('app-orders-customers-subscription-registration-topic'), 2, 'partitioned like the right table');
  t.is(plan.topics.get('app-orders-customers-subscription-response-topic'), 3, 'partitioned like the left table');
});

test('fk join: a result once both rows exist, updates from either side, tombstone when the right row goes (KIP-213)', (t) => {
  const { d, orders, customers, out } = run(false);
  orders.pipeInput('o1', { customer: 'c1', amount: 10 });
  t.deepEqual(out(), [], 'inner join: no customer yet');
  customers.pipeInput('c1', 'Alice');
  t.deepEqual(out(), [{ key: 'o1', value: '10@Alice' }]);
  customers.pipeInput('c1', 'Alice B.');
  orders.pipeInput('o2', { customer: 'c1', amount: 20 });
  t.deepEqual(out(), [
    { key: 'o1', value: '10@Alice B.' },
    { key: 'o2', value: '20@Alice B.' },
  ]);
  customers.pipeInput('c1', null);
  t.deepEqual(
    out().sort((a, b) => a.key!.localeCompare(b.key!)),
    [
      { key: 'o1', value: null },
      { key: 'o2', value: null },
    ],
  );
  t.is(d.getKeyValueStore('orders-customers').get('o1'), undefined);
});

test('fk join: when the foreign key changes, the result follows the new right row and ignores the old one', (t) => {
  const { orders, customers, out } = run(false);
  customers.pipeInput('c1', 'Alice');
  customers.pipeInput('c2', 'Bob');
  orders.pipeInput('o1', { customer: 'c1', amount: 10 });
  orders.pipeInput('o1', { customer: 'c2', amount: 11 });
  t.deepEqual(out(), [
    { key: 'o1', value: '10@Alice' },
    { key: 'o1', value: '11@Bob' },
  ]);
  customers.pipeInput('c1', 'Alice 2'); // o1 unsubscribed from c1
  t.deepEqual(out(), []);
  customers.pipeInput('c2', 'Bob 2');
  t.deepEqual(out(), [{ key: 'o1', value: '11@Bob 2' }]);
  orders.pipeInput('o1', { customer: 'c3', amount: 12 }); // no c3: the inner-join row is deleted
  t.deepEqual(out(), [{ key: 'o1', value: null }]);
});

test('fk join: deleting the left row deletes the result; a null foreign key joins nothing', (t) => {
  const { orders, customers, out } = run(false);
  customers.pipeInput('c1', 'Alice');
  orders.pipeInput('o1', { customer: 'c1', amount: 10 });
  orders.pipeInput('o1', null);
  orders.pipeInput('o2', { customer: null, amount: 5 });
  t.deepEqual(out(), [
    { key: 'o1', value: '10@Alice' },
    { key: 'o1', value: null },
  ]);
});

test('fk leftJoin: every left row has a result, with null while the right row is missing', (t) => {
  const { orders, customers, out } = run(true);
  orders.pipeInput('o1', { customer: 'c1', amount: 10 });
  orders.pipeInput('o2', { customer: null, amount: 5 });
  customers.pipeInput('c1', 'Alice');
  customers.pipeInput('c1', null);
  orders.pipeInput('o1', null);
  t.deepEqual(out(), [
    { key: 'o1', value: '10@null' },
    { key: 'o2', value: '5@null' },
    { key: 'o1', value: '10@Alice' },
    { key: 'o1', value: '10@null' },
    { key: 'o1', value: null },
  ]);
});

test('fk join across differently partitioned tables (3 order partitions, 2 customer partitions)', (t) => {
  const { d, orders, customers, out } = run(false, { partitions: { orders: 3, customers: 2 } });
  for (let c = 0; c < 5; c++) customers.pipeInput(`c${c}`, `name${c}`);
  for (let o = 0; o < 20; o++) orders.pipeInput(`o${o}`, { customer: `c${o % 5}`, amount: o });
  const rows = new Map(out().map((kv) => [kv.key, kv.value]));
  t.is(rows.size, 20);
  for (let o = 0; o < 20; o++) t.is(rows.get(`o${o}`), `${o}@name${o % 5}`);
  customers.pipeInput('c2', 'renamed');
  t.deepEqual(
    out().map((kv) => kv.key).sort(),
    ['o12', 'o17', 'o2', 'o7'],
  );
  t.is(d.partitionsOf('test-app-orders-customers-subscription-registration-topic'), 2);
});

test('fk join: a response whose hash does not match the current left value is stale and dropped', (t) => {
  // A response carries the hash of the left value it was requested for. Responses can arrive
  // after the left row changed again (they travel through two topics); those must not join.
  const { d, orders, customers, out } = run(false);
  customers.pipeInput('c1', 'Alice');
  const order: Order = { customer: 'c1', amount: 1 };
  orders.pipeInput('o1', order);
  t.deepEqual(out(), [{ key: 'o1', value: '1@Alice' }]);
  const responses = d.createInputTopic<string, Buffer>('test-app-orders-customers-subscription-response-topic', { keySerde: str, valueSerde: Serdes.bytes() });
  const response = (hash: Buffer, value: string) => Buffer.concat([Buffer.from([1, 1]), hash, Buffer.from(value)]);
  responses.pipeInput('o1', response(Buffer.alloc(16, 7), 'Stale'));
  t.deepEqual(out(), []);
  t.is(d.metrics().droppedByReason.get('stale foreign-key join response'), 1);
  responses.pipeInput('o1', response(createHash('md5').update(orderSerde.serialize(order)).digest(), 'Current'));
  t.deepEqual(out(), [{ key: 'o1', value: '1@Current' }]);
});
