import { TopologyError } from './errors.js';
import { type VersionedTableOptions, addVersionedTable } from './versioned.js';
import {
  DedupeProcessor,
  FilterProcessor,
  FlatMapProcessor,
  FlatMapValuesProcessor,
  MapProcessor,
  MapValuesProcessor,
  PassThroughProcessor,
  PeekProcessor,
  SelectKeyProcessor,
  SplitProcessor,
  TableSourceProcessor,
} from './builtinProcessors.js';
import { type AnyProcessorSupplier, type InternalBuilder, type StreamPartitioner, requireFunction, validateName } from './graph.js';
import { KGroupedStream } from './kGroupedStream.js';
import { type GlobalJoinedOptions, type JoinedOptions, type StreamJoinedOptions, streamGlobalJoin, streamStreamJoin, streamTableJoin } from './joins.js';
import { GlobalKTable } from './globalKTable.js';
import { KTable } from './kTable.js';
import type { ProcessorSupplier } from './processor.js';
import type { Serde } from './serde.js';
import { type ValueAndTimestamp, timestampedSpec } from './timestamped.js';
import { Serdes } from './serdes.js';
import type { KeyValue, StoreSpec } from './stores.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** Options of a stateless operator: an optional node name (generated if absent). */
export interface Named {
  readonly name?: string;
}

export interface ToOptions<K, V> extends Named {
  readonly keySerde?: Serde<K>;
  readonly valueSerde?: Serde<V>;
  /** Picks the output partition; default: Kafka's murmur2 of the serialized key. */
  readonly partitioner?: StreamPartitioner<K, V>;
}

export interface RepartitionOptions<K, V> {
  /** Required: the topic is `<appId>-<name>-repartition`. */
  readonly name: string;
  readonly keySerde?: Serde<K>;
  readonly valueSerde?: Serde<V>;
  /** Default: as many partitions as the upstream sub-topology's input topics. */
  readonly numberOfPartitions?: number;
}

export interface MaterializedOptions<K, V> {
  /** Required: the store name; the changelog topic is `<appId>-<name>-changelog`. */
  readonly name: string;
  readonly keySerde?: Serde<K>;
  readonly valueSerde?: Serde<V>;
  /** Change-log the store (default true). Without it, state is lost when a task moves. */
  readonly logging?: boolean;
  readonly caching?: boolean;
  /**
   * Keep the store's key index so range(), all() and prefixScan() work (default true). false makes
   * each update cheaper when nobody scans the store.
   */
  readonly rangeScans?: boolean;
}

/** The StoreSpec of a materialized key-value store. */
/** The (timestamped) key-value store of a table-producing operator. */
export function materializedSpec<K, V>(name: string, opts: MaterializedOptions<K, V>, keySerde: Serde<K>, valueSerde: Serde<V>): StoreSpec<K, ValueAndTimestamp<V>> {
  return timestampedSpec({
    name,
    kind: 'keyValue',
    keySerde,
    valueSerde,
    logging: opts.logging ?? true,
    caching: opts.caching ?? true,
    ...(opts.rangeScans === undefined ? {} : { rangeScans: opts.rangeScans }),
  });
}

export interface GroupedOptions<K, V> {
  readonly keySerde?: Serde<K>;
  readonly valueSerde?: Serde<V>;
}

export interface ProcessOptions extends Named {
  /** Stores (added with `builder.addStateStore`) the processor may use. */
  readonly stores?: readonly string[];
}

export interface DedupeOptions {
  /** Required: the store remembering seen ids is named after it. */
  readonly name: string;
  /** How long (in stream time) an id is remembered. */
  readonly retentionMs: number;
}

/** Throws the standard "stateful operator needs a name" error. */
export function requireName(opts: { readonly name?: string } | undefined, operator: string, example: string, derives: string): string {
  const name = opts?.name;
  if (name === undefined) {
    throw new TopologyError(
      `${operator} is stateful and needs an explicit name, e.g. ${example}. ${derives} derive from it; a generated name would shift when the topology changes and orphan the state.`,
    );
  }
  validateName(name, operator);
  return name;
}

export class KStream<K, V> {
  /** @internal Created by StreamsBuilder and operators. */
  constructor(
    /** @internal */ readonly builder: InternalBuilder,
    /** @internal The node whose output this stream is. */ readonly node: string,
    /** @internal */ readonly keySerde: Serde<K> | undefined,
    /** @internal */ readonly valueSerde: Serde<V> | undefined,
    /** @internal True after an operator that may change the key: grouping then repartitions. */ readonly keyChanged: boolean,
  ) {}

  private next<K2, V2>(
    operator: string,
    prefix: string,
    opts: Named | undefined,
    supplier: AnyProcessorSupplier,
    keySerde: Serde<K2> | undefined,
    valueSerde: Serde<V2> | undefined,
    keyChanged: boolean,
  ): KStream<K2, V2> {
    const name = this.builder.nodeName(opts?.name, prefix, operator);
    this.builder.addProcessor({ name, operator, parents: [this.node], supplier, stores: [] });
    return new KStream<K2, V2>(this.builder, name, keySerde, valueSerde, keyChanged);
  }

  /** Keeps records for which `predicate(key, value)` is true. */
  filter(predicate: (key: K, value: V) => boolean, opts?: Named): KStream<K, V> {
    requireFunction(predicate, 'filter', '(key, value) => boolean');
    return this.next('filter', 'KSTREAM-FILTER', opts, () => new FilterProcessor(predicate, true), this.keySerde, this.valueSerde, this.keyChanged);
  }

  /** Drops records for which `predicate(key, value)` is true. */
  filterNot(predicate: (key: K, value: V) => boolean, opts?: Named): KStream<K, V> {
    requireFunction(predicate, 'filterNot', '(key, value) => boolean');
    return this.next('filterNot', 'KSTREAM-FILTER', opts, () => new FilterProcessor(predicate, false), this.keySerde, this.valueSerde, this.keyChanged);
  }

  /** Replaces key and value. Marks the stream for repartitioning before grouping or joining. */
  map<K2, V2>(mapper: (key: K, value: V) => KeyValue<K2, V2>, opts?: Named): KStream<K2, V2> {
    requireFunction(mapper, 'map', '(key, value) => ({ key, value })');
    return this.next<K2, V2>('map', 'KSTREAM-MAP', opts, () => new MapProcessor(mapper), undefined, undefined, true);
  }

  /** Replaces the value; the key is unchanged, so no repartitioning is needed. */
  mapValues<V2>(mapper: (value: V, key: K) => V2, opts?: Named): KStream<K, V2> {
    requireFunction(mapper, 'mapValues', '(value, key) => newValue');
    return this.next<K, V2>('mapValues', 'KSTREAM-MAPVALUES', opts, () => new MapValuesProcessor(mapper), this.keySerde, undefined, this.keyChanged);
  }

  /** Zero or more records per input record, with new keys and values. */
  flatMap<K2, V2>(mapper: (key: K, value: V) => Iterable<KeyValue<K2, V2>>, opts?: Named): KStream<K2, V2> {
    requireFunction(mapper, 'flatMap', '(key, value) => Iterable<{ key, value }>');
    return this.next<K2, V2>('flatMap', 'KSTREAM-FLATMAP', opts, () => new FlatMapProcessor(mapper), undefined, undefined, true);
  }

  /** Zero or more values per input record, each with the input key. */
  flatMapValues<V2>(mapper: (value: V, key: K) => Iterable<V2>, opts?: Named): KStream<K, V2> {
    requireFunction(mapper, 'flatMapValues', '(value, key) => Iterable<newValue>');
    return this.next<K, V2>('flatMapValues', 'KSTREAM-FLATMAPVALUES', opts, () => new FlatMapValuesProcessor(mapper), this.keySerde, undefined, this.keyChanged);
  }

  /** Replaces the key. Marks the stream for repartitioning before grouping or joining. */
  selectKey<K2>(selector: (key: K, value: V) => K2, opts?: Named): KStream<K2, V> {
    requireFunction(selector, 'selectKey', '(key, value) => newKey');
    return this.next<K2, V>('selectKey', 'KSTREAM-KEY-SELECT', opts, () => new SelectKeyProcessor(selector), undefined, this.valueSerde, true);
  }

  /** Calls `action` for each record and passes the record on unchanged. */
  peek(action: (key: K, value: V) => void, opts?: Named): KStream<K, V> {
    requireFunction(action, 'peek', '(key, value) => void');
    return this.next('peek', 'KSTREAM-PEEK', opts, () => new PeekProcessor(action, true), this.keySerde, this.valueSerde, this.keyChanged);
  }

  /** Calls `action` for each record. Terminal. */
  foreach(action: (key: K, value: V) => void, opts?: Named): void {
    requireFunction(action, 'foreach', '(key, value) => void');
    this.next('foreach', 'KSTREAM-FOREACH', opts, () => new PeekProcessor(action, false), undefined, undefined, false);
  }

  /** Interleaves this stream and `other` (in processing order). */
  merge(other: KStream<K, V>, opts?: Named): KStream<K, V> {
    if (!(other instanceof KStream) || other.builder !== this.builder) {
      throw new TopologyError('merge: the other stream must be a KStream from the same StreamsBuilder.');
    }
    const name = this.builder.nodeName(opts?.name, 'KSTREAM-MERGE', 'merge');
    this.builder.addProcessor({ name, operator: 'merge', parents: [this.node, other.node], supplier: () => new PassThroughProcessor(), stores: [] });
    return new KStream<K, V>(this.builder, name, this.keySerde ?? other.keySerde, this.valueSerde ?? other.valueSerde, this.keyChanged || other.keyChanged);
  }

  /**
   * Routes each record to the first branch whose predicate matches:
   * `stream.split().branch(p, { name: 'a' }).defaultBranch()` returns `{ a, default }`.
   */
  split(opts?: Named): BranchedKStream<K, V> {
    return new BranchedKStream<K, V>(this, opts?.name, []);
  }

  /** Writes the stream to a topic. Terminal. */
  to(topic: string, opts: ToOptions<K, V> = {}): void {
    if (typeof topic !== 'string' || topic.length === 0) throw new TopologyError('to: the topic must be a non-empty string.');
    const name = this.builder.nodeName(opts.name, 'KSTREAM-SINK', 'to');
    this.builder.addSink({
      name,
      parents: [this.node],
      topic: { name: topic, internal: false },
      keySerde: opts.keySerde ?? this.keySerde ?? Serdes.msgpack<K>(),
      valueSerde: opts.valueSerde ?? this.valueSerde ?? Serdes.msgpack<V>(),
      partitioner: opts.partitioner,
    });
  }

  /** Writes the stream through `<appId>-<name>-repartition`, partitioned by the current key. */
  repartition(opts: RepartitionOptions<K, V>): KStream<K, V> {
    const name = requireName(opts, 'repartition', "repartition({ name: 'by-customer' })", 'The topic <appId>-<name>-repartition');
    const keySerde = opts.keySerde ?? this.keySerde ?? Serdes.msgpack<K>();
    const valueSerde = opts.valueSerde ?? this.valueSerde ?? Serdes.msgpack<V>();
    const source = this.builder.repartition(this.node, name, keySerde, valueSerde, opts.numberOfPartitions, 'repartition');
    return new KStream<K, V>(this.builder, source, keySerde, valueSerde, false);
  }

  /** Materializes the stream as a table (latest value per key; null values delete). */
  toTable(opts: MaterializedOptions<K, V> & { readonly versioned?: VersionedTableOptions }): KTable<K, V> {
    const name = requireName(opts, 'toTable', "toTable({ name: 'latest-prices' })", 'The store and its changelog topic <appId>-<name>-changelog');
    const keySerde = opts.keySerde ?? this.keySerde ?? Serdes.msgpack<K>();
    const valueSerde = opts.valueSerde ?? this.valueSerde ?? Serdes.msgpack<V>();
    const parent = this.keyChanged ? this.builder.repartition(this.node, name, keySerde, valueSerde, undefined, 'toTable') : this.node;
    if (opts.versioned !== undefined) return addVersionedTable(this.builder, name, parent, 'toTable', opts.versioned, opts, keySerde, valueSerde);
    this.builder.addStore(materializedSpec(name, opts, keySerde, valueSerde), 'toTable');
    this.builder.addProcessor({ name, operator: 'toTable', parents: [parent], supplier: () => new TableSourceProcessor(name), stores: [name] });
    return new KTable<K, V>(this.builder, name, keySerde, valueSerde, name);
  }

  /** Groups by the current key (repartitioning first if an upstream operator changed it). */
  groupByKey(opts: GroupedOptions<K, V> = {}): KGroupedStream<K, V> {
    return new KGroupedStream<K, V>(this.builder, this.node, opts.keySerde ?? this.keySerde, opts.valueSerde ?? this.valueSerde, this.keyChanged);
  }

  /** Groups by a new key; the aggregation repartitions through `<appId>-<name>-repartition`. */
  groupBy<K2>(selector: (key: K, value: V) => K2, opts: GroupedOptions<K2, V> & Named = {}): KGroupedStream<K2, V> {
    requireFunction(selector, 'groupBy', '(key, value) => newKey');
    const name = this.builder.nodeName(opts.name, 'KSTREAM-KEY-SELECT', 'groupBy');
    this.builder.addProcessor({ name, operator: 'groupBy', parents: [this.node], supplier: () => new SelectKeyProcessor(selector), stores: [] });
    return new KGroupedStream<K2, V>(this.builder, name, opts.keySerde, opts.valueSerde ?? this.valueSerde, true);
  }

  /**
   * Runs a custom processor (the processor API). The processor may forward any key and value,
   * so grouping afterwards repartitions.
   */
  process<K2 = never, V2 = never>(supplier: ProcessorSupplier<K, V, K2, V2>, opts: ProcessOptions = {}): KStream<K2, V2> {
    requireFunction(supplier, 'process', '() => Processor');
    const name = this.builder.nodeName(opts.name, 'KSTREAM-PROCESSOR', 'process');
    this.builder.addProcessor({ name, operator: 'process', parents: [this.node], supplier, stores: [...(opts.stores ?? [])] });
    return new KStream<K2, V2>(this.builder, name, undefined, undefined, true);
  }

  /**
   * Inner join. With a GlobalKTable: `opts.keyMapper(key, value)` picks the row (no co-partitioning).
   * With a KTable: each record is joined with the table's current row for its key
   * (no row: no output; table updates emit nothing). With a KStream: records of both streams with
   * equal keys and timestamps within `opts.windows` are joined (both sides are buffered in window
   * stores `<name>-this-join-store` and `<name>-other-join-store`). Inputs must be co-partitioned.
   */
  join<VT, VR>(table: KTable<NonNullable<K>, VT>, joiner: (value: V, tableValue: VT, key: K) => VR, opts: JoinedOptions<K, V>): KStream<K, VR>;
  join<VO, VR>(other: KStream<K, VO>, joiner: (value: V, otherValue: VO, key: K) => VR, opts: StreamJoinedOptions<K, V, VO>): KStream<K, VR>;
  join<GK, GV, VR>(global: GlobalKTable<GK, GV>, joiner: (value: V, globalValue: GV, key: K) => VR, opts: GlobalJoinedOptions<K, V, GK>): KStream<K, VR>;
  join(other: KTable<any, any> | KStream<K, any> | GlobalKTable<any, any>, joiner: (value: V, otherValue: any, key: K) => any, opts: any): KStream<K, any> {
    if (other instanceof KStream) return streamStreamJoin(this, other, joiner, opts, 'inner');
    if (other instanceof GlobalKTable) return streamGlobalJoin(this, other, joiner, opts, false);
    return streamTableJoin(this, other, joiner, opts, false);
  }

  /**
   * Left join: like join, but every record of this stream produces output; without a match the
   * joiner gets `null`. Stream-stream: an unmatched record is emitted once its window closes
   * (stream time past its timestamp + after + grace), never before a match could still arrive.
   */
  leftJoin<VT, VR>(table: KTable<NonNullable<K>, VT>, joiner: (value: V, tableValue: VT | null, key: K) => VR, opts: JoinedOptions<K, V>): KStream<K, VR>;
  leftJoin<VO, VR>(other: KStream<K, VO>, joiner: (value: V, otherValue: VO | null, key: K) => VR, opts: StreamJoinedOptions<K, V, VO>): KStream<K, VR>;
  leftJoin<GK, GV, VR>(global: GlobalKTable<GK, GV>, joiner: (value: V, globalValue: GV | null, key: K) => VR, opts: GlobalJoinedOptions<K, V, GK>): KStream<K, VR>;
  leftJoin(other: KTable<any, any> | KStream<K, any> | GlobalKTable<any, any>, joiner: (value: V, otherValue: any, key: K) => any, opts: any): KStream<K, any> {
    if (other instanceof KStream) return streamStreamJoin(this, other, joiner, opts, 'left');
    if (other instanceof GlobalKTable) return streamGlobalJoin(this, other, joiner, opts, true);
    return streamTableJoin(this, other, joiner, opts, true);
  }

  /** Stream-stream outer join: unmatched records of either side are emitted with `null` once their window closes. */
  outerJoin<VO, VR>(other: KStream<K, VO>, joiner: (value: V | null, otherValue: VO | null, key: K) => VR, opts: StreamJoinedOptions<K, V, VO>): KStream<K, VR> {
    if (!(other instanceof KStream)) throw new TopologyError('outerJoin: a KStream can only be outer-joined with another KStream (use leftJoin for a KTable).');
    return streamStreamJoin(this, other, joiner, opts, 'outer');
  }

  /**
   * Drops a record whose id (`idOf(key, value)`) was already seen within `retentionMs` of stream
   * time. Backed by a change-logged store `<name>`, so it survives restarts and is exactly-once.
   * Deduplication is per partition: duplicates must share the key (as producer resends do).
   */
  dedupe(idOf: (key: K, value: V) => string, opts: DedupeOptions): KStream<K, V> {
    requireFunction(idOf, 'dedupe', '(key, value) => id');
    const name = requireName(opts, 'dedupe', "dedupe((k, v) => v.id, { name: 'orders-dedupe', retentionMs: 3_600_000 })", 'The store and its changelog topic <appId>-<name>-changelog');
    const retentionMs = opts.retentionMs;
    if (typeof retentionMs !== 'number' || !Number.isFinite(retentionMs) || retentionMs <= 0) {
      throw new TopologyError(`dedupe "${name}": retentionMs must be a positive number of milliseconds, got ${String(retentionMs)}.`);
    }
    this.builder.addStore({ name, kind: 'keyValue', keySerde: Serdes.string(), valueSerde: Serdes.int64(), logging: true, caching: true, retentionMs }, 'dedupe');
    const purgeIntervalMs = Math.max(1, Math.min(Math.ceil(retentionMs / 2), 60_000));
    this.builder.addProcessor({
      name,
      operator: 'dedupe',
      parents: [this.node],
      supplier: () => new DedupeProcessor(name, idOf, retentionMs, purgeIntervalMs),
      stores: [name],
    });
    return new KStream<K, V>(this.builder, name, this.keySerde, this.valueSerde, this.keyChanged);
  }
}

interface Branch<K, V> {
  readonly name: string;
  readonly predicate: (key: K, value: V) => boolean;
}

/** The result of `KStream.split()`: add branches, then finish with `defaultBranch()` or `noDefaultBranch()`. */
export class BranchedKStream<K, V, B extends string = never> {
  /** @internal */
  constructor(
    private readonly stream: KStream<K, V>,
    private readonly splitName: string | undefined,
    private readonly branches: readonly Branch<K, V>[],
  ) {}

  branch<N extends string>(predicate: (key: K, value: V) => boolean, opts: { readonly name: N }): BranchedKStream<K, V, B | N> {
    requireFunction(predicate, 'split().branch', '(key, value) => boolean');
    const name = opts?.name;
    if (typeof name !== 'string' || name.length === 0) {
      throw new TopologyError("split().branch: each branch needs a name, e.g. .branch(p, { name: 'large' }); the result object is keyed by it.");
    }
    if (this.branches.some((b) => b.name === name)) throw new TopologyError(`split().branch: the branch name "${name}" is used twice.`);
    return new BranchedKStream<K, V, B | N>(this.stream, this.splitName, [...this.branches, { name, predicate }]);
  }

  /** Records that match no branch go to the branch named `name` (default "default"). */
  defaultBranch<N extends string = 'default'>(opts?: { readonly name?: N }): { readonly [P in B | N]: KStream<K, V> } {
    return this.finish((opts?.name ?? 'default') as N) as { readonly [P in B | N]: KStream<K, V> };
  }

  /** Records that match no branch are dropped. */
  noDefaultBranch(): { readonly [P in B]: KStream<K, V> } {
    return this.finish(undefined) as { readonly [P in B]: KStream<K, V> };
  }

  private finish(defaultName: string | undefined): Record<string, KStream<K, V>> {
    const b = this.stream.builder;
    if (defaultName !== undefined && this.branches.some((x) => x.name === defaultName)) {
      throw new TopologyError(`split(): the default branch name "${defaultName}" is also a branch name.`);
    }
    const splitName = b.nodeName(this.splitName, 'KSTREAM-BRANCH', 'split');
    const names = this.branches.map((x) => x.name);
    if (defaultName !== undefined) names.push(defaultName);
    const childNames = names.map((n) => `${splitName}-${n}`);
    const predicates = this.branches.map((x) => x.predicate);
    const defaultChild = defaultName === undefined ? undefined : childNames[childNames.length - 1];
    const branchChildren = childNames.slice(0, predicates.length);
    b.addProcessor({ name: splitName, operator: 'split', parents: [this.stream.node], supplier: () => new SplitProcessor(predicates, branchChildren, defaultChild), stores: [] });
    const out: Record<string, KStream<K, V>> = {};
    names.forEach((n, i) => {
      const child = b.nodeName(childNames[i], 'KSTREAM-BRANCHCHILD', 'split');
      b.addProcessor({ name: child, operator: 'branch', parents: [splitName], supplier: () => new PassThroughProcessor(), stores: [] });
      out[n] = new KStream<K, V>(b, child, this.stream.keySerde, this.stream.valueSerde, this.stream.keyChanged);
    });
    return out;
  }
}
