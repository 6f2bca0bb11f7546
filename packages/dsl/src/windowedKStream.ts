import { TopologyError } from './errors.js';
import { type InternalBuilder, requireFunction } from './graph.js';
import { sessionStoreGetter, windowStoreGetter } from './valueGetter.js';
import { PassThroughProcessor } from './builtinProcessors.js';
import { requireName } from './kStream.js';
import { KTable } from './kTable.js';
import type { Serde } from './serde.js';
import { Serdes } from './serdes.js';
import type { StoreSpec, Windowed } from './stores.js';
import { timestampedSpec } from './timestamped.js';
import { SessionWindowAggregateProcessor, SlidingWindowAggregateProcessor, TimeWindowAggregateProcessor } from './windowProcessors.js';
import { type SessionWindows, type SlidingWindows, type TimeWindows, type WindowInfo, Suppressed } from './windows.js';

/**
 * When a windowed aggregation emits: `'on-window-update'` (default) emits every update of a
 * window; `'on-window-close'` emits one final result per window once it closes (the same as
 * `.suppress(Suppressed.untilWindowCloses({ name: '<name>-suppress' }))`).
 */
export type EmitStrategy = 'on-window-update' | 'on-window-close';

export interface WindowedMaterializedOptions<K, V> {
  /** Required: the window/session store `<name>` (changelog `<appId>-<name>-changelog`). */
  readonly name: string;
  readonly keySerde?: Serde<K>;
  readonly valueSerde?: Serde<V>;
  readonly logging?: boolean;
  readonly caching?: boolean;
  /** How long windows stay queryable, in ms of stream time (default and minimum: window size + grace). */
  readonly retentionMs?: number;
  readonly emitStrategy?: EmitStrategy;
}

/** @internal What the windowed handles share with KGroupedStream. */
export interface GroupedSource<K, V> {
  readonly builder: InternalBuilder;
  readonly node: string;
  readonly keySerde: Serde<K> | undefined;
  readonly valueSerde: Serde<V> | undefined;
  readonly repartitionRequired: boolean;
}

type Kind = 'window' | 'session';

/** @internal One input of a (co)grouped aggregation: a grouped stream and the processor that folds it into the shared store. */
export interface AggregateInput<K> {
  readonly src: GroupedSource<K, any>;
  readonly supplier: () => unknown;
}

/**
 * @internal Builds a windowed aggregation over one grouped stream or, for `cogroup`, several: each
 * input gets its own processor (and, if its key changed, its own repartition topic
 * `<name>-cogroup-<i>-repartition`), all writing the one store `<name>`, merged into the node `<name>`.
 */
export function buildAggregate<K, V, VA>(
  src: GroupedSource<K, V> | readonly AggregateInput<K>[],
  operator: string,
  name: string,
  kind: Kind,
  opts: WindowedMaterializedOptions<K, VA>,
  defaultValueSerde: Serde<VA>,
  minRetention: number,
  windowSizeMs: number | undefined,
  info: Omit<WindowInfo, 'keySerde' | 'retentionMs'>,
  supplier: () => unknown,
): KTable<Windowed<K>, VA> {
  const first = Array.isArray(src) ? (src as readonly AggregateInput<K>[])[0]!.src : (src as GroupedSource<K, V>);
  const b = first.builder;
  const keySerde = opts.keySerde ?? first.keySerde ?? Serdes.msgpack<K>();
  const valueSerde = opts.valueSerde ?? defaultValueSerde;
  if (opts.retentionMs !== undefined && (typeof opts.retentionMs !== 'number' || !(opts.retentionMs >= minRetention))) {
    throw new TopologyError(
      `${operator} "${name}": retentionMs (${String(opts.retentionMs)}) must be at least ${minRetention} ms (window size + grace for time windows), or windows would expire while still open.`,
    );
  }
  const retentionMs = opts.retentionMs ?? minRetention;
  const spec: StoreSpec<K, VA> = {
    name,
    kind,
    keySerde,
    valueSerde,
    logging: opts.logging ?? true,
    caching: opts.caching ?? true,
    retentionMs,
    ...(windowSizeMs === undefined ? {} : { windowSizeMs }),
  };
  // Window stores keep each window's timestamp with its aggregate; a session's timestamp is its end.
  b.addStore(kind === 'window' ? timestampedSpec(spec) : spec, operator);
  addAggregateProcessors(b, Array.isArray(src) ? (src as readonly AggregateInput<K>[]) : undefined, src as GroupedSource<K, V>, operator, name, keySerde, supplier);
  const getter = kind === 'window' ? windowStoreGetter<K, VA>(name) : sessionStoreGetter<K, VA>(name);
  const table = new KTable<Windowed<K>, VA>(b, name, Serdes.windowed(keySerde), valueSerde, name, getter, { ...info, retentionMs, keySerde });
  const emit = opts.emitStrategy ?? 'on-window-update';
  if (emit === 'on-window-close') return table.suppressFinal(Suppressed.untilWindowCloses({ name: `${name}-suppress` }), info.inclusiveEnd);
  if (emit !== 'on-window-update') throw new TopologyError(`${operator} "${name}": emitStrategy must be 'on-window-update' or 'on-window-close', got ${JSON.stringify(emit)}.`);
  return table;
}

/**
 * @internal The processors of an aggregation: one over `single` (repartitioned through
 * `<name>-repartition` if needed), or for a cogroup one per input (`<name>-cogroup-<i>`, repartitioned
 * through `<name>-cogroup-<i>-repartition`) merged into the node `<name>`. All share the store `<name>`;
 * the inputs are co-partitioned.
 */
export function addAggregateProcessors<K>(
  b: InternalBuilder,
  cogrouped: readonly AggregateInput<K>[] | undefined,
  single: GroupedSource<K, unknown> | undefined,
  operator: string,
  name: string,
  keySerde: Serde<K>,
  supplier: () => unknown,
): void {
  if (cogrouped === undefined) {
    const src = single!;
    const parent = src.repartitionRequired ? b.repartition(src.node, name, keySerde, src.valueSerde ?? Serdes.msgpack(), undefined, operator) : src.node;
    b.addProcessor({ name, operator, parents: [parent], supplier: supplier as never, stores: [name] });
    return;
  }
  const nodes: string[] = [];
  cogrouped.forEach((input, i) => {
    const src = input.src;
    if (src.builder !== b) throw new TopologyError(`cogroup "${name}": every grouped stream must come from the same StreamsBuilder.`);
    const node = `${name}-cogroup-${i}`;
    const parent = src.repartitionRequired ? b.repartition(src.node, node, keySerde, src.valueSerde ?? Serdes.msgpack(), undefined, operator) : src.node;
    b.addProcessor({ name: node, operator, parents: [parent], supplier: input.supplier as never, stores: [name] });
    nodes.push(node);
  });
  b.addProcessor({ name, operator: 'cogroup', parents: nodes, supplier: () => new PassThroughProcessor(), stores: [] });
  const sources = [...new Set(nodes.flatMap((n) => b.sourcesOf(n)))];
  if (sources.length > 1) b.copartition(sources);
}

const EXAMPLE = "count({ name: 'clicks-per-5min' })";

/**
 * A grouped stream windowed by `TimeWindows` or `SlidingWindows`: aggregations produce a
 * `KTable<Windowed<K>, V>` backed by a window store.
 */
export class TimeWindowedKStream<K, V> {
  /** @internal */
  constructor(
    private readonly src: GroupedSource<K, V>,
    private readonly windows: TimeWindows | SlidingWindows,
  ) {}

  private agg<VA>(operator: string, name: string, opts: WindowedMaterializedOptions<K, VA>, serde: Serde<VA>, init: (() => VA) | undefined, fn: (k: K, v: V, a: VA) => VA): KTable<Windowed<K>, VA> {
    const w = this.windows;
    if (w.kind === 'time') {
      return buildAggregate(this.src, operator, name, 'window', opts, serde, w.sizeMs + w.graceMs, w.sizeMs, { closeAfterMs: w.graceMs, inclusiveEnd: false }, () =>
        new TimeWindowAggregateProcessor(name, w.sizeMs, w.advanceMs, w.graceMs, init, fn),
      );
    }
    // Sliding: windows [s, s + d] (Windowed end = s + d, inclusive); a record looks back 2d for the windows it updates.
    const d = w.timeDifferenceMs;
    return buildAggregate(this.src, operator, name, 'window', opts, serde, 2 * d + w.graceMs + 2, d, { closeAfterMs: w.graceMs, inclusiveEnd: true }, () =>
      new SlidingWindowAggregateProcessor(name, d, w.graceMs, init, fn),
    );
  }

  /** Records per key and window (int64). */
  count(opts: WindowedMaterializedOptions<K, number>): KTable<Windowed<K>, number> {
    const name = requireName(opts, 'windowed count', EXAMPLE, 'The window store and its changelog topic');
    return this.agg<number>('count', name, opts, Serdes.int64(), () => 0, (_k, _v, n) => n + 1);
  }

  reduce(reducer: (aggregate: V, value: V) => V, opts: WindowedMaterializedOptions<K, V>): KTable<Windowed<K>, V> {
    requireFunction(reducer, 'windowed reduce', '(aggregate, value) => newAggregate');
    const name = requireName(opts, 'windowed reduce', "reduce((a, b) => a + b, { name: 'sum-per-5min' })", 'The window store and its changelog topic');
    return this.agg<V>('reduce', name, opts, this.src.valueSerde ?? Serdes.msgpack<V>(), undefined, (_k, v, a) => reducer(a, v));
  }

  aggregate<VA>(initializer: () => VA, aggregator: (key: K, value: V, aggregate: VA) => VA, opts: WindowedMaterializedOptions<K, VA>): KTable<Windowed<K>, VA> {
    requireFunction(initializer, 'windowed aggregate', '() => initialAggregate');
    requireFunction(aggregator, 'windowed aggregate', '(key, value, aggregate) => newAggregate');
    const name = requireName(opts, 'windowed aggregate', "aggregate(() => 0, (k, v, a) => a + v, { name: 'sum-per-5min' })", 'The window store and its changelog topic');
    return this.agg<VA>('aggregate', name, opts, Serdes.msgpack<VA>(), initializer, aggregator);
  }
}

/** A grouped stream windowed by `SessionWindows`: aggregations produce `KTable<Windowed<K>, V>` backed by a session store. */
export class SessionWindowedKStream<K, V> {
  /** @internal */
  constructor(
    private readonly src: GroupedSource<K, V>,
    private readonly windows: SessionWindows,
  ) {}

  private agg<VA>(operator: string, name: string, opts: WindowedMaterializedOptions<K, VA>, serde: Serde<VA>, init: (() => VA) | undefined, fn: (k: K, v: V, a: VA) => VA, merger: (k: K, a: VA, b: VA) => VA): KTable<Windowed<K>, VA> {
    const w = this.windows;
    // A session [s, e] may still grow until stream time passes e + gap + grace.
    return buildAggregate(this.src, operator, name, 'session', opts, serde, w.inactivityGapMs + w.graceMs + 1, undefined, { closeAfterMs: w.inactivityGapMs + w.graceMs, inclusiveEnd: true }, () =>
      new SessionWindowAggregateProcessor(name, w.inactivityGapMs, w.graceMs, init, fn, merger),
    );
  }

  /** Records per key and session. */
  count(opts: WindowedMaterializedOptions<K, number>): KTable<Windowed<K>, number> {
    const name = requireName(opts, 'session count', "count({ name: 'clicks-per-session' })", 'The session store and its changelog topic');
    return this.agg<number>('count', name, opts, Serdes.int64(), () => 0, (_k, _v, n) => n + 1, (_k, a, c) => a + c);
  }

  /** Combines values per session; merging two sessions combines their aggregates with the same reducer. */
  reduce(reducer: (aggregate: V, value: V) => V, opts: WindowedMaterializedOptions<K, V>): KTable<Windowed<K>, V> {
    requireFunction(reducer, 'session reduce', '(aggregate, value) => newAggregate');
    const name = requireName(opts, 'session reduce', "reduce((a, b) => a + b, { name: 'sum-per-session' })", 'The session store and its changelog topic');
    return this.agg<V>('reduce', name, opts, this.src.valueSerde ?? Serdes.msgpack<V>(), undefined, (_k, v, a) => reducer(a, v), (_k, a, c) => reducer(a, c));
  }

  /** `merger(key, a, b)` combines the aggregates of two sessions a record bridges. */
  aggregate<VA>(
    initializer: () => VA,
    aggregator: (key: K, value: V, aggregate: VA) => VA,
    merger: (key: K, aggregate1: VA, aggregate2: VA) => VA,
    opts: WindowedMaterializedOptions<K, VA>,
  ): KTable<Windowed<K>, VA> {
    requireFunction(initializer, 'session aggregate', '() => initialAggregate');
    requireFunction(aggregator, 'session aggregate', '(key, value, aggregate) => newAggregate');
    requireFunction(merger, 'session aggregate', '(key, aggregate1, aggregate2) => merged');
    const name = requireName(opts, 'session aggregate', "aggregate(init, add, merge, { name: 'per-session' })", 'The session store and its changelog topic');
    return this.agg<VA>('aggregate', name, opts, Serdes.msgpack<VA>(), initializer, aggregator, merger);
  }
}
