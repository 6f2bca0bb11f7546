import { TableSourceProcessor } from './builtinProcessors.js';
import { TopologyError } from './errors.js';
import { type VersionedTableOptions, addVersionedTable } from './versioned.js';
import { InternalBuilder, type TimestampExtractor } from './graph.js';
import { KStream, type Named, materializedSpec, requireName } from './kStream.js';
import { KTable } from './kTable.js';
import { GlobalKTable } from './globalKTable.js';
import type { Serde } from './serde.js';
import { Serdes } from './serdes.js';
import type { StoreSpec } from './stores.js';
import { Topology } from './topology.js';

export interface ConsumedOptions<K, V> extends Named {
  /** Default: msgpack. */
  readonly keySerde?: Serde<K>;
  /** Default: msgpack. */
  readonly valueSerde?: Serde<V>;
  /**
   * Event time of each record, e.g. `(_k, order) => order.createdAt` (default: the Kafka record
   * timestamp). Drives stream time, punctuators and (later) windows. A negative result drops the record.
   */
  readonly timestampExtractor?: TimestampExtractor<K, V>;
}

export interface TableOptions<K, V> extends ConsumedOptions<K, V> {
  /** Required: the table is materialized in store `<name>` (changelog `<appId>-<name>-changelog`). */
  readonly name: string;
  readonly logging?: boolean;
  readonly caching?: boolean;
  /** See MaterializedOptions.rangeScans (default true). */
  readonly rangeScans?: boolean;
  /**
   * Materialize the table in a versioned store (KIP-889) that keeps each key's values of the last
   * `historyRetentionMs` of stream time: stream-table joins read the row valid at each stream
   * record's timestamp, and may wait for late table updates (`gracePeriodMs`). A versioned table
   * has no record cache, and out-of-order updates change its history without being forwarded.
   */
  readonly versioned?: VersionedTableOptions;
}

export interface GlobalTableOptions<K, V> {
  /** Required: the store holding the replicated table. */
  readonly name: string;
  readonly keySerde?: Serde<K>;
  readonly valueSerde?: Serde<V>;
}

/** Builds a topology with the DSL: `const b = new StreamsBuilder(); b.stream(...)...; b.build()`. */
export class StreamsBuilder {
  private readonly internal = new InternalBuilder();
  private built = false;

  private checkTopic(topic: string, what: string): void {
    if (this.built) throw new TopologyError(`${what}: build() was already called; create a new StreamsBuilder for another topology.`);
    if (typeof topic !== 'string' || topic.length === 0) throw new TopologyError(`${what}: the topic must be a non-empty string.`);
  }

  /** A record stream read from `topic`. */
  stream<K, V>(topic: string, opts: ConsumedOptions<K, V> = {}): KStream<K, V> {
    this.checkTopic(topic, 'stream');
    const keySerde = opts.keySerde ?? Serdes.msgpack<K>();
    const valueSerde = opts.valueSerde ?? Serdes.msgpack<V>();
    const name = this.internal.nodeName(opts.name, 'KSTREAM-SOURCE', 'stream');
    this.internal.addSource({ name, topic: { name: topic, internal: false }, keySerde, valueSerde, timestampExtractor: opts.timestampExtractor });
    return new KStream<K, V>(this.internal, name, keySerde, valueSerde, false);
  }

  /** A table read from the changelog topic `topic` (null values delete), materialized in store `name`. */
  table<K, V>(topic: string, opts: TableOptions<K, V>): KTable<K, V> {
    this.checkTopic(topic, 'table');
    const name = requireName(opts, 'table', `table('${topic}', { name: '${topic}-store' })`, 'The store and its changelog topic');
    const keySerde = opts.keySerde ?? Serdes.msgpack<K>();
    const valueSerde = opts.valueSerde ?? Serdes.msgpack<V>();
    const source = this.internal.nodeName(`${name}-source`, 'KTABLE-SOURCE', 'table');
    this.internal.addSource({ name: source, topic: { name: topic, internal: false }, keySerde, valueSerde, timestampExtractor: opts.timestampExtractor });
    if (opts.versioned !== undefined) return addVersionedTable(this.internal, name, source, 'table', opts.versioned, opts, keySerde, valueSerde);
    this.internal.addStore(materializedSpec(name, opts, keySerde, valueSerde), 'table');
    this.internal.addProcessor({ name, operator: 'table', parents: [source], supplier: () => new TableSourceProcessor(name), stores: [name] });
    return new KTable<K, V>(this.internal, name, keySerde, valueSerde, name);
  }

  /**
   * A table replicated in full on every instance: each instance reads every partition of `topic`
   * into store `name` (the topic is its changelog, so the store is not change-logged). Streams
   * join it with a key mapper and need no co-partitioning.
   */
  globalTable<K, V>(topic: string, opts: GlobalTableOptions<K, V>): GlobalKTable<K, V> {
    this.checkTopic(topic, 'globalTable');
    const name = requireName(opts, 'globalTable', `globalTable('${topic}', { name: '${topic}-global' })`, 'The store');
    const keySerde = opts.keySerde ?? Serdes.msgpack<K>();
    const valueSerde = opts.valueSerde ?? Serdes.msgpack<V>();
    this.internal.addGlobalTable({ name, topic, keySerde, valueSerde });
    return new GlobalKTable<K, V>(this.internal, name, topic, keySerde, valueSerde);
  }

  /** Adds a store for processors that name it in `process(supplier, { stores: [...] })`. */
  addStateStore(spec: StoreSpec): this {
    if (this.built) throw new TopologyError('addStateStore: build() was already called.');
    if (spec.kind !== 'keyValue' && spec.kind !== 'window' && spec.kind !== 'session') {
      throw new TopologyError(`addStateStore: store "${spec.name}" has unknown kind "${String(spec.kind)}"; use Stores.keyValueStore, Stores.windowStore or Stores.sessionStore.`);
    }
    this.internal.addStore(spec, 'addStateStore');
    return this;
  }

  /** Compiles the graph into an immutable Topology. */
  build(): Topology {
    const topology = new Topology(this.internal);
    this.built = true;
    return topology;
  }
}
