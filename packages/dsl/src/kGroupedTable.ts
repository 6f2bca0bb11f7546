import { TableAggregateProcessor, TableGroupByProcessor } from './builtinProcessors.js';
import { changeSerde } from './changeSerde.js';
import { type InternalBuilder, requireFunction } from './graph.js';
import { KTable } from './kTable.js';
import { type MaterializedOptions, materializedSpec, requireName } from './kStream.js';
import type { Serde } from './serde.js';
import { Serdes } from './serdes.js';
import type { KeyValue } from './stores.js';

/**
 * A re-keyed table, ready to aggregate. Each upstream update becomes a subtraction of the old
 * row (under its old group key) and an addition of the new row, sent through
 * `<appId>-<name>-repartition`.
 */
export class KGroupedTable<K, V> {
  /** @internal */
  constructor(
    private readonly builder: InternalBuilder,
    private readonly node: string,
    private readonly selector: (key: unknown, value: unknown) => KeyValue<K, V>,
    private readonly keySerde: Serde<K> | undefined,
    private readonly valueSerde: Serde<V> | undefined,
  ) {}

  private aggregateNode<VA>(
    operator: string,
    name: string,
    opts: MaterializedOptions<K, VA>,
    defaultValueSerde: Serde<VA>,
    initializer: (() => VA) | undefined,
    adder: (key: K, value: V, agg: VA) => VA,
    subtractor: (key: K, value: V, agg: VA) => VA,
  ): KTable<K, VA> {
    const b = this.builder;
    const keySerde = opts.keySerde ?? this.keySerde ?? Serdes.msgpack<K>();
    const valueSerde = opts.valueSerde ?? defaultValueSerde;
    const selectName = b.nodeName(`${name}-select`, 'KTABLE-SELECT', operator);
    b.addProcessor({ name: selectName, operator: 'groupBy', parents: [this.node], supplier: () => new TableGroupByProcessor(this.selector), stores: [] });
    const source = b.repartition(selectName, name, keySerde, changeSerde(this.valueSerde ?? Serdes.msgpack<V>()), undefined, operator);
    b.addStore(materializedSpec(name, opts, keySerde, valueSerde), operator);
    b.addProcessor({ name, operator, parents: [source], supplier: () => new TableAggregateProcessor(name, initializer, adder, subtractor), stores: [name] });
    return new KTable<K, VA>(b, name, keySerde, valueSerde, name);
  }

  /** Rows per group key. */
  count(opts: MaterializedOptions<K, number>): KTable<K, number> {
    const name = requireName(opts, 'KGroupedTable.count', "count({ name: 'users-per-region' })", 'The store, its changelog topic and the repartition topic');
    return this.aggregateNode<number>('count', name, opts, Serdes.int64(), () => 0, (_k, _v, n) => n + 1, (_k, _v, n) => n - 1);
  }

  reduce(adder: (aggregate: V, value: V) => V, subtractor: (aggregate: V, value: V) => V, opts: MaterializedOptions<K, V>): KTable<K, V> {
    requireFunction(adder, 'KGroupedTable.reduce', '(aggregate, value) => newAggregate');
    requireFunction(subtractor, 'KGroupedTable.reduce', '(aggregate, oldValue) => newAggregate');
    const name = requireName(opts, 'KGroupedTable.reduce', "reduce(add, subtract, { name: 'totals' })", 'The store, its changelog topic and the repartition topic');
    return this.aggregateNode<V>('reduce', name, opts, this.valueSerde ?? Serdes.msgpack<V>(), undefined, (_k, v, a) => adder(a, v), (_k, v, a) => subtractor(a, v));
  }

  aggregate<VA>(
    initializer: () => VA,
    adder: (key: K, value: V, aggregate: VA) => VA,
    subtractor: (key: K, value: V, aggregate: VA) => VA,
    opts: MaterializedOptions<K, VA>,
  ): KTable<K, VA> {
    requireFunction(initializer, 'KGroupedTable.aggregate', '() => initialAggregate');
    requireFunction(adder, 'KGroupedTable.aggregate', '(key, value, aggregate) => newAggregate');
    requireFunction(subtractor, 'KGroupedTable.aggregate', '(key, oldValue, aggregate) => newAggregate');
    const name = requireName(opts, 'KGroupedTable.aggregate', "aggregate(init, add, subtract, { name: 'sums' })", 'The store, its changelog topic and the repartition topic');
    return this.aggregateNode<VA>('aggregate', name, opts, Serdes.msgpack<VA>(), initializer, adder, subtractor);
  }
}
