/**
 * `cogroup` (KIP-150): several grouped streams, possibly of different value types, aggregated into
 * one table with one store. Each input keeps its own aggregator; all share the initializer and the
 * store `<name>`, so a key's aggregate sees the records of every input in processing order, and the
 * result carries the largest timestamp of the records that made it (as every aggregation does).
 *
 * The inputs must be co-partitioned (the driver and the runtime check); an input whose key changed is
 * repartitioned through `<appId>-<name>-cogroup-<i>-repartition` (i: its position in the cogroup).
 */
import { StreamAggregateProcessor } from './builtinProcessors.js';
import { TopologyError } from './errors.js';
import { requireFunction } from './graph.js';
import type { KGroupedStream } from './kGroupedStream.js';
import { type MaterializedOptions, materializedSpec, requireName } from './kStream.js';
import { KTable } from './kTable.js';
import { Serdes } from './serdes.js';
import type { Windowed } from './stores.js';
import { addAggregateProcessors, buildAggregate, type AggregateInput, type WindowedMaterializedOptions } from './windowedKStream.js';
import { SessionWindowAggregateProcessor, SlidingWindowAggregateProcessor, TimeWindowAggregateProcessor } from './windowProcessors.js';
import { SessionWindows, SlidingWindows, TimeWindows } from './windows.js';

/** @internal */
export interface CogroupPart<K, VA> {
  readonly grouped: KGroupedStream<K, any>;
  readonly aggregator: (key: K, value: unknown, aggregate: VA) => VA;
}

export class CogroupedKStream<K, VA> {
  /** @internal */
  constructor(/** @internal */ readonly parts: readonly CogroupPart<K, VA>[]) {}

  /** Adds another grouped stream (any value type, same key type) with its own aggregator. */
  cogroup<V2>(grouped: KGroupedStream<K, V2>, aggregator: (key: K, value: V2, aggregate: VA) => VA): CogroupedKStream<K, VA> {
    if (grouped === null || typeof grouped !== 'object' || !('repartitionRequired' in grouped)) {
      throw new TopologyError('cogroup: pass a KGroupedStream (stream.groupByKey() or stream.groupBy(...)) and its aggregator.');
    }
    requireFunction(aggregator, 'cogroup', '(key, value, aggregate) => newAggregate');
    if (this.parts.some((p) => p.grouped === grouped)) throw new TopologyError('cogroup: this grouped stream is already part of the cogroup.');
    return new CogroupedKStream<K, VA>([...this.parts, { grouped, aggregator: aggregator as (key: K, value: unknown, aggregate: VA) => VA }]);
  }

  /** Aggregates every input into the store `<name>` (initialized per key with `initializer()`). */
  aggregate(initializer: () => VA, opts: MaterializedOptions<K, VA>): KTable<K, VA> {
    requireFunction(initializer, 'cogroup aggregate', '() => initialAggregate');
    const name = requireName(opts, 'cogroup aggregate', "aggregate(() => 0, { name: 'totals' })", 'The store, its changelog topic and the repartition topics');
    const first = this.parts[0]!.grouped;
    const b = first.builder;
    const keySerde = opts.keySerde ?? this.parts.find((p) => p.grouped.keySerde !== undefined)?.grouped.keySerde ?? Serdes.msgpack<K>();
    const valueSerde = opts.valueSerde ?? Serdes.msgpack<VA>();
    b.addStore(materializedSpec(name, opts, keySerde, valueSerde), 'cogroup');
    const inputs: AggregateInput<K>[] = this.parts.map((p) => ({ src: p.grouped, supplier: () => new StreamAggregateProcessor(name, initializer, p.aggregator) }));
    addAggregateProcessors(b, inputs, undefined, 'cogroup', name, keySerde, () => undefined);
    return new KTable<K, VA>(b, name, keySerde, valueSerde, name);
  }

  /** Aggregates per key and window: `TimeWindows`, `SlidingWindows` or `SessionWindows`. */
  windowedBy(windows: TimeWindows | SlidingWindows): TimeWindowedCogroupedKStream<K, VA>;
  windowedBy(windows: SessionWindows): SessionWindowedCogroupedKStream<K, VA>;
  windowedBy(windows: TimeWindows | SlidingWindows | SessionWindows): TimeWindowedCogroupedKStream<K, VA> | SessionWindowedCogroupedKStream<K, VA> {
    if (windows instanceof TimeWindows || windows instanceof SlidingWindows) return new TimeWindowedCogroupedKStream<K, VA>(this.parts, windows);
    if (windows instanceof SessionWindows) return new SessionWindowedCogroupedKStream<K, VA>(this.parts, windows);
    throw new TopologyError('cogroup windowedBy: pass TimeWindows, SlidingWindows or SessionWindows.');
  }
}

export class TimeWindowedCogroupedKStream<K, VA> {
  /** @internal */
  constructor(
    private readonly parts: readonly CogroupPart<K, VA>[],
    private readonly windows: TimeWindows | SlidingWindows,
  ) {}

  /** Aggregates every input per key and window into the window store `<name>`. */
  aggregate(initializer: () => VA, opts: WindowedMaterializedOptions<K, VA>): KTable<Windowed<K>, VA> {
    requireFunction(initializer, 'cogroup windowed aggregate', '() => initialAggregate');
    const name = requireName(opts, 'cogroup windowed aggregate', "aggregate(() => 0, { name: 'totals-per-5min' })", 'The window store and its changelog topic');
    const w = this.windows;
    const serde = opts.valueSerde ?? Serdes.msgpack<VA>();
    if (w.kind === 'time') {
      const inputs = this.parts.map((p) => ({ src: p.grouped, supplier: () => new TimeWindowAggregateProcessor(name, w.sizeMs, w.advanceMs, w.graceMs, initializer, p.aggregator) }));
      return buildAggregate<K, unknown, VA>(inputs, 'cogroup', name, 'window', opts, serde, w.sizeMs + w.graceMs, w.sizeMs, { closeAfterMs: w.graceMs, inclusiveEnd: false }, () => undefined);
    }
    const d = w.timeDifferenceMs;
    const inputs = this.parts.map((p) => ({ src: p.grouped, supplier: () => new SlidingWindowAggregateProcessor(name, d, w.graceMs, initializer, p.aggregator) }));
    return buildAggregate<K, unknown, VA>(inputs, 'cogroup', name, 'window', opts, serde, 2 * d + w.graceMs + 2, d, { closeAfterMs: w.graceMs, inclusiveEnd: true }, () => undefined);
  }
}

export class SessionWindowedCogroupedKStream<K, VA> {
  /** @internal */
  constructor(
    private readonly parts: readonly CogroupPart<K, VA>[],
    private readonly windows: SessionWindows,
  ) {}

  /** Aggregates every input per key and session into the session store `<name>`; `merger` combines two sessions a record bridges. */
  aggregate(initializer: () => VA, merger: (key: K, aggregate1: VA, aggregate2: VA) => VA, opts: WindowedMaterializedOptions<K, VA>): KTable<Windowed<K>, VA> {
    requireFunction(initializer, 'cogroup session aggregate', '() => initialAggregate');
    requireFunction(merger, 'cogroup session aggregate', '(key, aggregate1, aggregate2) => merged');
    const name = requireName(opts, 'cogroup session aggregate', "aggregate(() => 0, (k, a, b) => a + b, { name: 'per-session' })", 'The session store and its changelog topic');
    const w = this.windows;
    const inputs = this.parts.map((p) => ({ src: p.grouped, supplier: () => new SessionWindowAggregateProcessor(name, w.inactivityGapMs, w.graceMs, initializer, p.aggregator, merger) }));
    return buildAggregate<K, unknown, VA>(inputs, 'cogroup', name, 'session', opts, opts.valueSerde ?? Serdes.msgpack<VA>(), w.inactivityGapMs + w.graceMs + 1, undefined, { closeAfterMs: w.inactivityGapMs + w.graceMs, inclusiveEnd: true }, () => undefined);
  }
}
