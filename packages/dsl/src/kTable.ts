import { TableFilterProcessor, TableMapValuesProcessor, TableToStreamProcessor } from './builtinProcessors.js';
import { type AnyProcessorSupplier, type InternalBuilder, requireFunction } from './graph.js';
import { KGroupedTable } from './kGroupedTable.js';
import { KStream, type GroupedOptions, type Named } from './kStream.js';
import { TopologyError } from './errors.js';
import { type ForeignKeyJoinedOptions, foreignKeyJoin } from './fkJoin.js';
import { type TableJoinedOptions, tableTableJoin } from './joins.js';
import type { Serde } from './serde.js';
import type { KeyValue, Windowed } from './stores.js';
import { type ValueGetter, mappedGetter, storeGetter } from './valueGetter.js';
import { SuppressProcessor, bufferKeySerde, bufferValueSerde } from './windowProcessors.js';
import { Serdes } from './serdes.js';
import type { Suppressed, TimeLimitSuppressed, WindowCloseSuppressed, WindowInfo } from './windows.js';
import { TimeLimitSuppressProcessor, timeLimitBufferSerdes, timeLimitSuppressGetter } from './timeLimitSuppress.js';
import { validateName } from './graph.js';

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
    /** @internal How joins look rows up (undefined: the key-value store `queryableStoreName`; null: not possible). */
    getter?: ValueGetter<K, V> | null,
    /** @internal Set on windowed tables straight from an aggregation: what suppress needs. */
    readonly windowInfo?: WindowInfo,
  ) {
    this.valueGetter =
      getter === null ? undefined : (getter ?? (queryableStoreName !== undefined && builder.stores.get(queryableStoreName)?.kind === 'keyValue' ? storeGetter<K, V>(queryableStoreName) : undefined));
  }

  /** @internal */
  readonly valueGetter: ValueGetter<K, V> | undefined;

  private next<V2>(
    operator: string,
    prefix: string,
    opts: Named | undefined,
    supplier: AnyProcessorSupplier,
    valueSerde: Serde<V2> | undefined,
    get: (key: K, value: V) => V2 | undefined,
  ): KTable<K, V2> {
    const name = this.builder.nodeName(opts?.name, prefix, operator);
    this.builder.addProcessor({ name, operator, parents: [this.node], supplier, stores: [] });
    const getter = this.valueGetter === undefined ? null : mappedGetter(this.valueGetter, get);
    return new KTable<K, V2>(this.builder, name, this.keySerde, valueSerde, undefined, getter);
  }

  /** Keeps rows for which `predicate` is true; a row that stops matching becomes a tombstone. */
  filter(predicate: (key: K, value: V) => boolean, opts?: Named): KTable<K, V> {
    requireFunction(predicate, 'KTable.filter', '(key, value) => boolean');
    return this.next('filter', 'KTABLE-FILTER', opts, () => new TableFilterProcessor(predicate, true), this.valueSerde, (k, v) => (predicate(k, v) ? v : undefined));
  }

  /** Drops rows for which `predicate` is true (emitting tombstones for rows that start matching). */
  filterNot(predicate: (key: K, value: V) => boolean, opts?: Named): KTable<K, V> {
    requireFunction(predicate, 'KTable.filterNot', '(key, value) => boolean');
    return this.next('filterNot', 'KTABLE-FILTER', opts, () => new TableFilterProcessor(predicate, false), this.valueSerde, (k, v) => (predicate(k, v) ? undefined : v));
  }

  mapValues<V2>(mapper: (value: V, key: K) => V2, opts?: Named): KTable<K, V2> {
    requireFunction(mapper, 'KTable.mapValues', '(value, key) => newValue');
    return this.next<V2>('mapValues', 'KTABLE-MAPVALUES', opts, () => new TableMapValuesProcessor(mapper), undefined, (k, v) => mapper(v, k));
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

  /**
   * Joins rows with equal keys (table-table inner join): the result has a row where both tables
   * do, and updates whenever either side does. A deleted row on either side deletes the result row.
   * With `foreignKeyExtractor` in the options it is a foreign-key join (KIP-213): each row joins
   * the other table's row whose key is `foreignKeyExtractor(value, key)`; the tables need not be
   * co-partitioned (it goes through `<appId>-<name>-subscription-registration-topic` and
   * `-subscription-response-topic`), and the result is materialized in store `<name>`.
   */
  join<KO, VO, VR>(other: KTable<KO, VO>, joiner: (value: V, otherValue: VO, key: K) => VR, opts: ForeignKeyJoinedOptions<K, V, KO, VR>): KTable<K, VR>;
  join<VO, VR>(other: KTable<K, VO>, joiner: (value: V, otherValue: VO, key: K) => VR, opts: TableJoinedOptions): KTable<K, VR>;
  join(other: KTable<any, any>, joiner: (value: V, otherValue: any, key: K) => any, opts: TableJoinedOptions | ForeignKeyJoinedOptions<K, V, any, any>): KTable<K, any> {
    if (opts !== null && typeof opts === 'object' && 'foreignKeyExtractor' in opts) return foreignKeyJoin(this, other, joiner, opts, false);
    return tableTableJoin(this, other, joiner, opts, 'inner');
  }

  /** Table-table left join: every row of this table, with the other table's row or `null`. */
  leftJoin<KO, VO, VR>(other: KTable<KO, VO>, joiner: (value: V, otherValue: VO | null, key: K) => VR, opts: ForeignKeyJoinedOptions<K, V, KO, VR>): KTable<K, VR>;
  leftJoin<VO, VR>(other: KTable<K, VO>, joiner: (value: V, otherValue: VO | null, key: K) => VR, opts: TableJoinedOptions): KTable<K, VR>;
  leftJoin(other: KTable<any, any>, joiner: (value: V, otherValue: any, key: K) => any, opts: TableJoinedOptions | ForeignKeyJoinedOptions<K, V, any, any>): KTable<K, any> {
    if (opts !== null && typeof opts === 'object' && 'foreignKeyExtractor' in opts) return foreignKeyJoin(this, other, joiner, opts, true);
    return tableTableJoin(this, other, joiner, opts, 'left');
  }

  /** Table-table outer join: a row wherever either table has one; the missing side is `null`. */
  outerJoin<VO, VR>(other: KTable<K, VO>, joiner: (value: V | null, otherValue: VO | null, key: K) => VR, opts: TableJoinedOptions): KTable<K, VR> {
    return tableTableJoin(this, other, joiner, opts, 'outer');
  }

  /**
   * Rate-limits the table's updates.
   * - `Suppressed.untilWindowCloses({ name })`: one final result per window once it closes (stream
   *   time >= window end + grace). Only for windowed tables straight from
   *   `windowedBy(...).count/reduce/aggregate`.
   * - `Suppressed.untilTimeLimit(ms, bufferConfig, { name })`: any table; the latest update of a key
   *   is emitted once stream time reaches the time of its first buffered update + `ms` (or earlier,
   *   `emitEarlyWhenFull`, when the buffer is over its limits).
   * The buffer is the change-logged store `<name>`.
   */
  suppress<KW>(this: KTable<Windowed<KW>, V>, suppressed: WindowCloseSuppressed): KTable<Windowed<KW>, V>;
  suppress(suppressed: TimeLimitSuppressed): KTable<K, V>;
  suppress(suppressed: Suppressed): KTable<any, V> {
    if (suppressed?.kind === 'untilTimeLimit') return this.suppressTimeLimit(suppressed);
    return (this as unknown as KTable<Windowed<unknown>, V>).suppressFinal(suppressed, false);
  }

  private suppressTimeLimit(s: TimeLimitSuppressed): KTable<K, V> {
    if (s.name === undefined) {
      throw new TopologyError("suppress: Suppressed.untilTimeLimit needs a name (its buffer store and changelog derive from it), e.g. Suppressed.untilTimeLimit(60_000, BufferConfig.maxRecords(10_000), { name: 'rate-limited' }).");
    }
    validateName(s.name, 'suppress');
    const b = this.builder;
    const name = s.name;
    const keySerde = (this.keySerde ?? Serdes.msgpack<K>()) as Serde<K>;
    const valueSerde = (this.valueSerde ?? Serdes.msgpack<V>()) as Serde<V>;
    const serdes = timeLimitBufferSerdes(keySerde as Serde<unknown>, valueSerde as Serde<unknown>);
    b.addStore({ name, kind: 'keyValue', keySerde: serdes.key, valueSerde: serdes.value, logging: true, caching: true, rangeScans: true }, 'suppress');
    const { timeLimitMs, buffer } = s;
    b.addProcessor({ name, operator: 'suppress', parents: [this.node], supplier: () => new TimeLimitSuppressProcessor<K, V>(name, timeLimitMs, buffer, keySerde, valueSerde), stores: [name] });
    const getter = this.valueGetter === undefined ? null : timeLimitSuppressGetter(this.valueGetter, name, keySerde, valueSerde);
    return new KTable<K, V>(b, name, this.keySerde, this.valueSerde, undefined, getter);
  }

  /** @internal `strict`: emit once stream time passes end + grace (emitStrategy 'on-window-close' of inclusive-end windows). */
  suppressFinal<KW>(this: KTable<Windowed<KW>, V>, suppressed: WindowCloseSuppressed, strict: boolean): KTable<Windowed<KW>, V> {
    const info = this.windowInfo;
    if (info === undefined) {
      throw new TopologyError(
        'suppress(untilWindowCloses): the table is not a windowed aggregation. Call suppress right after windowedBy(...).count/reduce/aggregate, or use emitStrategy: \'on-window-close\'.',
      );
    }
    if (suppressed?.kind !== 'untilWindowCloses') throw new TopologyError("suppress: pass Suppressed.untilWindowCloses({ name: 'final-counts' }).");
    const name = suppressed.name;
    if (name === undefined) throw new TopologyError("suppress: Suppressed.untilWindowCloses needs a name (its buffer store and changelog derive from it), e.g. Suppressed.untilWindowCloses({ name: 'final-counts' }).");
    const b = this.builder;
    const keySerde = bufferKeySerde<KW>(info.keySerde);
    const valueSerde = bufferValueSerde(this.valueSerde ?? Serdes.msgpack<V>());
    b.addStore({ name, kind: 'keyValue', keySerde, valueSerde, logging: true, caching: true, rangeScans: true }, 'suppress');
    const closeAfter = info.closeAfterMs;
    const retention = info.retentionMs;
    const limit = suppressed.buffer === undefined ? undefined : { buffer: suppressed.buffer, keySerde, valueSerde };
    b.addProcessor({ name, operator: 'suppress', parents: [this.node], supplier: () => new SuppressProcessor<KW, V>(name, closeAfter, strict, retention, limit), stores: [name] });
    return new KTable<Windowed<KW>, V>(b, name, this.keySerde, this.valueSerde, undefined, null);
  }
}
