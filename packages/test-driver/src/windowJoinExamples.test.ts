/**
 * The two examples of docs/dsl.md, run through the driver: card transactions counted per 5
 * minutes with one final count per window (fraud alerting), and orders enriched with the
 * customer table.
 */
import test from 'ava';
import { Serdes, StreamsBuilder, TimeWindows, type Windowed } from '@vltava/dsl';
import { TopologyTestDriver } from './topologyTestDriver.js';

const MIN = 60_000;

interface Txn {
  readonly card: string;
  readonly amount: number;
}

test('example: transactions per card per 5 minutes, one final count per window, alerts above 3', (t) => {
  const b = new StreamsBuilder();
  b.stream('transactions', { keySerde: Serdes.string(), valueSerde: Serdes.json<Txn>() })
    .groupBy((_id, txn) => txn.card, { keySerde: Serdes.string() })
    .windowedBy(TimeWindows.ofSizeAndGrace(5 * MIN, 1 * MIN))
    .count({ name: 'txns-per-5min', emitStrategy: 'on-window-close' })
    .toStream()
    .filter((_w, n) => n !== null && n > 3)
    .to('fraud-alerts', { keySerde: Serdes.windowed(Serdes.string()), valueSerde: Serdes.int64() });
  const d = new TopologyTestDriver(b.build(), { defaultPartitions: 2 });
  const input = d.createInputTopic('transactions', { keySerde: Serdes.string(), valueSerde: Serdes.json<Txn>() });
  let id = 0;
  const txn = (card: string, atMin: number) => input.pipeInput(`t${id++}`, { card, amount: 10 }, atMin * MIN);
  for (const m of [0, 1, 2, 3]) txn('card-A', m); // 4 in [0, 5)
  for (const m of [0, 4]) txn('card-B', m); // 2 in [0, 5)
  txn('card-A', 4.5); // 5th for A
  txn('card-C', 5.5); // stream time 5.5 min < 5 + 1: window [0, 5) still open
  txn('card-A', 4.9); // out of order but within grace: counted
  const alerts = d.createOutputTopic<Windowed<string>, number>('fraud-alerts', { keySerde: Serdes.windowed(Serdes.string()), valueSerde: Serdes.int64() });
  t.deepEqual(alerts.readKeyValuesToList(), [], 'nothing until the window closes');
  // Windows close per partition as that partition's stream time passes end + grace.
  for (let i = 0; i < 10; i++) txn(`card-Z${i}`, 7);
  t.deepEqual(alerts.readKeyValuesToList(), [{ key: { key: 'card-A', window: { start: 0, end: 5 * MIN } }, value: 6 }]);
});

interface Order {
  readonly customerId: string;
  readonly total: number;
}
interface Customer {
  readonly name: string;
  readonly tier: 'gold' | 'basic';
}

test('example: orders enriched with the customer table (stream-table leftJoin)', (t) => {
  const b = new StreamsBuilder();
  const customers = b.table('customers', { name: 'customers', keySerde: Serdes.string(), valueSerde: Serdes.json<Customer>() });
  b.stream('orders', { keySerde: Serdes.string(), valueSerde: Serdes.json<Order>() })
    .selectKey((_orderId, o) => o.customerId)
    .leftJoin(customers, (o, c) => ({ ...o, customer: c?.name ?? 'unknown', discount: c?.tier === 'gold' ? 0.1 : 0 }), {
      name: 'orders-with-customers',
      keySerde: Serdes.string(),
      valueSerde: Serdes.json<Order>(),
    })
    .to('enriched-orders', { valueSerde: Serdes.json() });
  const d = new TopologyTestDriver(b.build(), { defaultPartitions: 3 });
  d.createInputTopic('customers', { keySerde: Serdes.string(), valueSerde: Serdes.json<Customer>() }).pipeKeyValueList([
    { key: 'c1', value: { name: 'Ada', tier: 'gold' } },
    { key: 'c2', value: { name: 'Bob', tier: 'basic' } },
  ]);
  d.createInputTopic('orders', { keySerde: Serdes.string(), valueSerde: Serdes.json<Order>() }).pipeKeyValueList([
    { key: 'o1', value: { customerId: 'c1', total: 100 } },
    { key: 'o2', value: { customerId: 'c2', total: 50 } },
    { key: 'o3', value: { customerId: 'c9', total: 10 } },
  ]);
  const out = d.createOutputTopic('enriched-orders', { keySerde: Serdes.string(), valueSerde: Serdes.json<Order & { customer: string; discount: number }>() }).readKeyValuesToMap();
  t.deepEqual(out.get('c1'), { customerId: 'c1', total: 100, customer: 'Ada', discount: 0.1 });
  t.deepEqual(out.get('c2'), { customerId: 'c2', total: 50, customer: 'Bob', discount: 0 });
  t.deepEqual(out.get('c9'), { customerId: 'c9', total: 10, customer: 'unknown', discount: 0 });
});

test('windowed count with a record cache: one update per window per commit', (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: Serdes.string(), valueSerde: Serdes.string() })
    .groupByKey()
    .windowedBy(TimeWindows.ofSizeWithNoGrace(10))
    .count({ name: 'c' })
    .toStream()
    .to('out', { keySerde: Serdes.windowed(Serdes.string()), valueSerde: Serdes.int64() });
  const d = new TopologyTestDriver(b.build(), { cacheMaxBytes: 1 << 20 });
  const i = d.createInputTopic('in', { keySerde: Serdes.string(), valueSerde: Serdes.string() });
  i.pipeKeyValueList(Array.from({ length: 4 }, () => ({ key: 'k', value: 'x' })), 1, 0); // one commit, all at ts 1
  i.pipeKeyValueList([{ key: 'k', value: 'x' }], 12);
  const out = d.createOutputTopic<Windowed<string>, number>('out', { keySerde: Serdes.windowed(Serdes.string()), valueSerde: Serdes.int64() }).readKeyValuesToList();
  t.deepEqual(out, [
    { key: { key: 'k', window: { start: 0, end: 10 } }, value: 4 },
    { key: { key: 'k', window: { start: 10, end: 20 } }, value: 1 },
  ]);
});
