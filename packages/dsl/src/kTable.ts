import { TableFilterProcessor, TableMapValuesProcessor, TableToStreamProcessor } from './builtinProcessors.js';
import { type AnyProcessorSupplier, type InternalBuilder, requireFunction } from './graph.js';
import { KGroupedTable } from './kGroupedTable.js';
import { KStream, type GroupedOptions, type Named } from './kStream.js';
import type { Serde } from './serde.js';
import type { KeyValue } from './stores.js';

/**
 * A changelog view of a table: each update carries the new value and the value it replaced,
 * so filters emit tombstones and grouped aggregations can subtract.
 */
export class KTable<K, V> {
  /** @internal */
  constructor(
    /** @internal */ readonly builder: InternalBuilder,
    /** @internal */ readonly node: string,
    /** @internal */ readonly keySerde: Serde<K> | undefined,
    /** @internal */ readonly valueSerde: Serde<V> | undefined,
    /** The store holding this table, if materialized (query it with the driver's getKeyValueStore). */
    readonly queryableStoreName: string | undefined,
  ) {}

  private next<V2>(operator: string, prefix: string, opts: Named | undefined, supplier: AnyProcessorSupplier, valueSerde: Serde<V2> | undefined): KTable<K, V2> {
    const name = this.builder.nodeName(opts?.name, prefix, operator);
    this.builder.addProcessor({ name, operator, parents: [this.node], supplier, stores: [] });
    return new KTable<K, V2>(this.builder, name, this.keySerde, valueSerde, undefined);
  }

  /** Keeps rows for which `predicate` is true; a row that stops matching becomes a tombstone. */
  filter(predicate: (key: K, value: V) => boolean, opts?: Named): KTable<K, V> {
    requireFunction(predicate, 'KTable.filter', '(key, value) => boolean');
    return this.next('filter', 'KTABLE-FILTER', opts, () => new TableFilterProcessor(predicate, true), this.valueSerde);
  }

  /** Drops rows for which `predicate` is true (emitting tombstones for rows that start matching). */
  filterNot(predicate: (key: K, value: V) => boolean, opts?: Named): KTable<K, V> {
    requireFunction(predicate, 'KTable.filterNot', '(key, value) => boolean');
    return this.next('filterNot', 'KTABLE-FILTER', opts, () => new TableFilterProcessor(predicate, false), this.valueSerde);
  }

  mapValues<V2>(mapper: (value: V, key: K) => V2, opts?: Named): KTable<K, V2> {
    requireFunction(mapper, 'KTable.mapValues', '(value, key) => newValue');
    return this.next<V2>('mapValues', 'KTABLE-MAPVALUES', opts, () => new TableMapValuesProcessor(mapper), undefined);
  }

  /** The table's updates as a stream; a deleted row arrives as a `null` value (tombstone). */
  toStream(opts?: Named): KStream<K, V | null> {
    const name = this.builder.nodeName(opts?.name, 'KTABLE-TOSTREAM', 'toStream');
    this.builder.addProcessor({ name, operator: 'toStream', parents: [this.node], supplier: () => new TableToStreamProcessor(), stores: [] });
    return new KStream<K, V | null>(this.builder, name, this.keySerde, this.valueSerde as Serde<V | null> | undefined, false);
  }

  /** Re-keys rows for an aggregation with an adder and a subtractor (`KGroupedTable`). */
  groupBy<K2, V2>(selector: (key: K, value: V) => KeyValue<K2, V2>, opts: GroupedOptions<K2, V2> = {}): KGroupedTable<K2, V2> {
    requireFunction(selector, 'KTable.groupBy', '(key, value) => ({ key, value })');
    return new KGroupedTable<K2, V2>(this.builder, this.node, selector as (key: unknown, value: unknown) => KeyValue<K2, V2>, opts.keySerde, opts.valueSerde);
  }
}
