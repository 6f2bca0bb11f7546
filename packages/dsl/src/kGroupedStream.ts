import { StreamAggregateProcessor } from './builtinProcessors.js';
import { TopologyError } from './errors.js';
import { type InternalBuilder, requireFunction } from './graph.js';
import { KTable } from './kTable.js';
import { type MaterializedOptions, materializedSpec, requireName } from './kStream.js';
import type { Serde } from './serde.js';
import { Serdes } from './serdes.js';
import { SessionWindowedKStream, TimeWindowedKStream, addAggregateProcessors } from './windowedKStream.js';
import { CogroupedKStream } from './cogroupedKStream.js';
import { SessionWindows, SlidingWindows, TimeWindows } from './windows.js';

/**
 * A stream grouped by key, ready to aggregate. Records with a null key or null value are
 * dropped (and counted in the task's dropped-records metric), as in Kafka Streams.
 */
export class KGroupedStream<K, V> {
  /** @internal */
  constructor(
    /** @internal */ readonly builder: InternalBuilder,
    /** @internal */ readonly node: string,
    /** @internal */ readonly keySerde: Serde<K> | undefined,
    /** @internal */ readonly valueSerde: Serde<V> | undefined,
    /** @internal */ readonly repartitionRequired: boolean,
  ) {}

  /**
   * Aggregates per key and time window: `TimeWindows` (tumbling/hopping, epoch-aligned),
   * `SlidingWindows` or `SessionWindows`. Aggregations then produce a `KTable<Windowed<K>, V>`.
   */
  windowedBy(windows: TimeWindows | SlidingWindows): TimeWindowedKStream<K, V>;
  windowedBy(windows: SessionWindows): SessionWindowedKStream<K, V>;
  windowedBy(windows: TimeWindows | SlidingWindows | SessionWindows): TimeWindowedKStream<K, V> | SessionWindowedKStream<K, V> {
    if (windows instanceof TimeWindows || windows instanceof SlidingWindows) return new TimeWindowedKStream<K, V>(this, windows);
    if (windows instanceof SessionWindows) return new SessionWindowedKStream<K, V>(this, windows);
    throw new TopologyError('windowedBy: pass TimeWindows.ofSizeAndGrace(...) (optionally .advanceBy(...)), SlidingWindows.ofTimeDifferenceAndGrace(...) or SessionWindows.ofInactivityGapAndGrace(...).');
  }

  private aggregateNode<VA>(
    operator: string,
    name: string,
    opts: MaterializedOptions<K, VA>,
    defaultValueSerde: Serde<VA>,
    initializer: (() => VA) | undefined,
    aggregator: (key: K, value: V, agg: VA) => VA,
  ): KTable<K, VA> {
    const b = this.builder;
    const keySerde = opts.keySerde ?? this.keySerde ?? Serdes.msgpack<K>();
    const valueSerde = opts.valueSerde ?? defaultValueSerde;
    b.addStore(materializedSpec(name, opts, keySerde, valueSerde), operator);
    addAggregateProcessors(b, undefined, this as KGroupedStream<K, unknown>, operator, name, keySerde, () => new StreamAggregateProcessor(name, initializer, aggregator));
    return new KTable<K, VA>(b, name, keySerde, valueSerde, name);
  }

  /**
   * Starts a cogroup (KIP-150): several grouped streams with the same key type folded into one
   * aggregate, each with its own `aggregator`, in one store. Add more with `.cogroup(other,
   * aggregator)`, then `.aggregate(initializer, { name })` (or `.windowedBy(...)` first).
   */
  cogroup<VA>(aggregator: (key: K, value: V, aggregate: VA) => VA): CogroupedKStream<K, VA> {
    requireFunction(aggregator, 'cogroup', '(key, value, aggregate) => newAggregate');
    return new CogroupedKStream<K, VA>([{ grouped: this, aggregator: aggregator as (key: K, value: unknown, aggregate: VA) => VA }]);
  }

  /** Counts records per key. The store `<name>` holds the counts (int64). */
  count(opts: MaterializedOptions<K, number>): KTable<K, number> {
    const name = requireName(opts, 'count', "count({ name: 'word-counts' })", 'The store, its changelog topic and the repartition topic');
    return this.aggregateNode<number>('count', name, opts, Serdes.int64(), () => 0, (_k, _v, n) => n + 1);
  }

  /** Combines values per key with `reducer(aggregate, value)`; the first value starts the aggregate. */
  reduce(reducer: (aggregate: V, value: V) => V, opts: MaterializedOptions<K, V>): KTable<K, V> {
    requireFunction(reducer, 'reduce', '(aggregate, value) => newAggregate');
    const name = requireName(opts, 'reduce', "reduce((a, b) => a + b, { name: 'totals' })", 'The store, its changelog topic and the repartition topic');
    return this.aggregateNode<V>('reduce', name, opts, this.valueSerde ?? Serdes.msgpack<V>(), undefined, (_k, v, agg) => reducer(agg, v));
  }

  /** Folds values per key into an aggregate of another type. */
  aggregate<VA>(initializer: () => VA, aggregator: (key: K, value: V, aggregate: VA) => VA, opts: MaterializedOptions<K, VA>): KTable<K, VA> {
    requireFunction(initializer, 'aggregate', '() => initialAggregate');
    requireFunction(aggregator, 'aggregate', '(key, value, aggregate) => newAggregate');
    const name = requireName(opts, 'aggregate', "aggregate(() => 0, (k, v, a) => a + v, { name: 'sums' })", 'The store, its changelog topic and the repartition topic');
    return this.aggregateNode<VA>('aggregate', name, opts, Serdes.msgpack<VA>(), initializer, aggregator);
  }
}
