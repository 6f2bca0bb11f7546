/**
 * Type-level tests: each `Expect<Equal<...>>` fails `tsc -b` if inference regresses.
 * The runtime test at the bottom only keeps ava happy and checks the handles exist.
 */
import test from 'ava';
import type { Change, StreamRecord } from './processor.js';
import type { KGroupedStream } from './kGroupedStream.js';
import type { KGroupedTable } from './kGroupedTable.js';
import type { KStream } from './kStream.js';
import type { KTable } from './kTable.js';
import { Serdes } from './serdes.js';
import { StreamsBuilder } from './streamsBuilder.js';
import { Suppressed } from './windows.js';
import { BufferConfig } from './timeLimitSuppress.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

interface Order {
  readonly id: string;
  readonly customer: string;
  readonly amount: number;
}

const b = new StreamsBuilder();
const orders = b.stream('orders', { keySerde: Serdes.string(), valueSerde: Serdes.json<Order>() });
const byCustomer = orders.groupBy((_k, o) => o.customer);
const counts = byCustomer.count({ name: 'orders-per-customer' });
const totals = orders.groupByKey().aggregate(() => 0, (_k, o, sum) => sum + o.amount, { name: 'totals' });
const reduced = orders.mapValues((o) => o.amount).groupByKey().reduce((a, x) => a + x, { name: 'sum' });
const mapped = orders.map((k, o) => ({ key: o.amount, value: k.length }));
const flat = orders.flatMapValues((o) => [o.id, o.customer]);
const flatKv = orders.flatMap((k, o) => [{ key: o.customer, value: [k] }]);
const keyed = orders.selectKey((_k, o) => o.amount > 10);
const table = b.table('customers', { name: 'customers', keySerde: Serdes.string(), valueSerde: Serdes.json<{ region: string }>() });
const regionCounts = table.groupBy((k, c) => ({ key: c.region, value: k })).count({ name: 'per-region' });
const branches = orders.split().branch((_k, o) => o.amount > 100, { name: 'large' }).branch((_k, o) => o.amount < 1, { name: 'tiny' }).defaultBranch();
const noDefault = orders.split().branch(() => true, { name: 'all' }).noDefaultBranch();
const processed = orders.process<number, string>(() => ({
  init(ctx) {
    type _ctx = Expect<Equal<Parameters<typeof ctx.forward>[0], StreamRecord<number, string>>>;
  },
  process(r) {
    type _r = Expect<Equal<typeof r, StreamRecord<string, Order>>>;
  },
}));

export type Checks = [
  Expect<Equal<typeof orders, KStream<string, Order>>>,
  Expect<Equal<typeof byCustomer, KGroupedStream<string, Order>>>,
  Expect<Equal<typeof counts, KTable<string, number>>>,
  Expect<Equal<typeof totals, KTable<string, number>>>,
  Expect<Equal<typeof reduced, KTable<string, number>>>,
  Expect<Equal<typeof mapped, KStream<number, number>>>,
  Expect<Equal<typeof flat, KStream<string, string>>>,
  Expect<Equal<typeof flatKv, KStream<string, string[]>>>,
  Expect<Equal<typeof keyed, KStream<boolean, Order>>>,
  Expect<Equal<ReturnType<typeof table.groupBy<string, string>>, KGroupedTable<string, string>>>,
  Expect<Equal<typeof regionCounts, KTable<string, number>>>,
  Expect<Equal<ReturnType<typeof counts.toStream>, KStream<string, number | null>>>,
  Expect<Equal<ReturnType<typeof table.mapValues<number>>, KTable<string, number>>>,
  Expect<Equal<keyof typeof branches, 'large' | 'tiny' | 'default'>>,
  Expect<Equal<(typeof branches)['large'], KStream<string, Order>>>,
  Expect<Equal<keyof typeof noDefault, 'all'>>,
  Expect<Equal<typeof processed, KStream<number, string>>>,
  Expect<Equal<Change<number>['oldValue'], number | null>>,
];

// @ts-expect-error: a count is a number, not a string
export const wrong: KTable<string, string> = counts;
// @ts-expect-error: the value serde must match the stream's value type
orders.to('out', { valueSerde: Serdes.int64() });

// Stateful operators need a name at compile time too (and a TopologyError at run time if forced).
export function namesAreRequired(): void {
  // @ts-expect-error: count needs { name }
  orders.groupByKey().count();
  // @ts-expect-error: a table needs { name }
  b.table('t2', { keySerde: Serdes.string() });
  // @ts-expect-error: repartition needs { name }
  orders.repartition({ numberOfPartitions: 3 });
  // @ts-expect-error: dedupe needs a retention
  orders.dedupe((_k, o) => o.id, { name: 'd' });
  // @ts-expect-error: a branch needs a name
  orders.split().branch(() => true, {});
}

// The newer operators, typed end to end.
const clicks = b.stream('clicks', { keySerde: Serdes.string(), valueSerde: Serdes.string() }).groupByKey();
const cogrouped = clicks
  .cogroup((_k, page: string, a: { pages: string[]; spent: number }) => ({ ...a, pages: [...a.pages, page] }))
  .cogroup(orders.groupByKey(), (_k, o, a) => ({ ...a, spent: a.spent + o.amount }))
  .aggregate(() => ({ pages: [], spent: 0 }), { name: 'cogrouped' });
const limited = counts.suppress(Suppressed.untilTimeLimit(1000, BufferConfig.maxRecords(10), { name: 'limited' }));
const versionedPrices = b.table('prices', { name: 'prices', keySerde: Serdes.string(), valueSerde: Serdes.int64(), versioned: { historyRetentionMs: 60_000 } });
const priced = orders.join(versionedPrices, (o, price) => o.amount * price, { name: 'priced', gracePeriodMs: 1000 });
export type NewOperatorChecks = [
  Expect<Equal<typeof cogrouped, KTable<string, { pages: string[]; spent: number }>>>,
  Expect<Equal<typeof limited, KTable<string, number>>>,
  Expect<Equal<typeof priced, KStream<string, number>>>,
];

export function newOperatorTypeErrors(): void {
  // @ts-expect-error: untilWindowCloses is only for windowed tables
  counts.suppress(Suppressed.untilWindowCloses({ name: 'final' }));
  // @ts-expect-error: the second aggregator must fold into the same aggregate type
  clicks.cogroup((_k, _v, a: number) => a + 1).cogroup(orders.groupByKey(), (_k, o) => o.customer);
  // @ts-expect-error: a cogroup aggregate needs { name }
  clicks.cogroup((_k, _v, a: number) => a + 1).aggregate(() => 0);
}

test('type-level checks compile (see the Checks type)', (t) => {
  t.truthy(counts.queryableStoreName === 'orders-per-customer');
  t.is(Object.keys(branches).sort().join(','), 'default,large,tiny');
});
