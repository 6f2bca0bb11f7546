/**
 * Join operators behind `KStream.join/leftJoin/outerJoin` and `KTable.join/leftJoin/outerJoin`.
 * Every join is named (its stores and repartition topics derive from the name), records the
 * co-partition group of its inputs, and repartitions a key-changed stream first.
 */
import { TopologyError } from './errors.js';
import { type InternalBuilder, requireFunction } from './graph.js';
import { type JoinGrace, type JoinKind, type JoinTimeTracker, StreamGlobalJoinProcessor, StreamStreamJoinProcessor, StreamTableJoinProcessor, TableTableJoinProcessor, listSerde, outerKeySerde } from './joinProcessors.js';
import { KStream, requireName } from './kStream.js';
import { KTable } from './kTable.js';
import type { GlobalKTable } from './globalKTable.js';
import { PassThroughProcessor } from './builtinProcessors.js';
import type { Serde } from './serde.js';
import { Serdes } from './serdes.js';
import type { ValueGetter } from './valueGetter.js';
import { JoinWindows } from './windows.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

export interface JoinedOptions<K, V> {
  /** Required: the join's node (and, for a key-changed stream, `<appId>-<name>-left-repartition`). */
  readonly name: string;
  /** Serdes for the repartition topic of a key-changed stream. */
  readonly keySerde?: Serde<K>;
  readonly valueSerde?: Serde<V>;
  /**
   * Stream-table joins over a versioned table only (KIP-923): stream records wait up to this long
   * (ms of stream time) in the change-logged store `<name>-buffer`, then join with the table row
   * valid at their timestamp, in timestamp order. At most the table's history retention.
   */
  readonly gracePeriodMs?: number;
}

export interface StreamJoinedOptions<K, V, VO> extends JoinedOptions<K, V> {
  /** Which records join: `JoinWindows.ofTimeDifferenceAndGrace(60_000, 10_000)`. */
  readonly windows: JoinWindows;
  readonly otherValueSerde?: Serde<VO>;
  /** Change-log the two join buffers (default true). */
  readonly logging?: boolean;
}

export interface TableJoinedOptions {
  /** Required: names the join's nodes. */
  readonly name: string;
}

const kindName = (k: JoinKind): string => (k === 'inner' ? 'join' : k === 'left' ? 'leftJoin' : 'outerJoin');

function joinName(opts: { readonly name?: string } | undefined, op: string, example: string): string {
  return requireName(opts, op, example, 'The join\'s nodes, stores and repartition topics');
}

function checkBuilder(b: InternalBuilder, other: { builder: InternalBuilder }, op: string): void {
  if (other.builder !== b) throw new TopologyError(`${op}: both sides must come from the same StreamsBuilder.`);
}

/** Side of a join, repartitioned through `<appId>-<name>-<suffix>-repartition` if its key changed. */
function sideNode<K, V>(s: KStream<K, V>, name: string, suffix: string, op: string, keySerde: Serde<K> | undefined, valueSerde: Serde<V> | undefined): string {
  if (!s.keyChanged) return s.node;
  return s.builder.repartition(s.node, `${name}-${suffix}`, keySerde ?? s.keySerde ?? Serdes.msgpack<K>(), valueSerde ?? s.valueSerde ?? Serdes.msgpack<V>(), undefined, op);
}

function copartition(b: InternalBuilder, nodes: readonly string[]): void {
  const sources = [...new Set(nodes.flatMap((n) => b.sourcesOf(n)))];
  if (sources.length > 1) b.copartition(sources);
}

function tableGetter<K, V>(t: KTable<K, V>, op: string, name: string): ValueGetter<K, V> {
  const g = t.valueGetter;
  if (g === undefined) {
    throw new TopologyError(
      `${op} "${name}": the table cannot be looked up by key (a suppressed table, or derived from one). Join the table before suppress(), or a table read with builder.table(...), toTable({ name }) or an aggregation.`,
    );
  }
  return g;
}

export function streamTableJoin<K, V, VT, VR>(
  stream: KStream<K, V>,
  table: KTable<K, VT>,
  joiner: (value: V, tableValue: any, key: K) => VR,
  opts: JoinedOptions<K, V>,
  left: boolean,
): KStream<K, VR> {
  const op = left ? 'leftJoin' : 'join';
  const b = stream.builder;
  if (!(table instanceof KTable)) throw new TopologyError(`${op}: the other side must be a KStream or a KTable.`);
  checkBuilder(b, table, op);
  requireFunction(joiner, op, '(value, tableValue) => joined');
  const name = joinName(opts, op, `${op}(customers, (order, customer) => ({ ...order, customer }), { name: 'orders-with-customers' })`);
  const getter = tableGetter(table, op, name);
  const parent = sideNode(stream, name, 'left', op, opts.keySerde, opts.valueSerde);
  let grace: JoinGrace<K, V> | undefined;
  const graceMs = opts.gracePeriodMs;
  if (graceMs !== undefined) {
    if (typeof graceMs !== 'number' || !(graceMs >= 0)) throw new TopologyError(`${op} "${name}": gracePeriodMs must be a non-negative number of ms, got ${String(graceMs)}.`);
    if (getter.connectVersioned === undefined || getter.historyRetentionMs === undefined) {
      throw new TopologyError(
        `${op} "${name}": a grace period needs a versioned table (the join reads the row as of each record's time), e.g. builder.table(topic, { name, versioned: { historyRetentionMs: ${Math.max(graceMs, 1)} } }).`,
      );
    }
    if (graceMs > getter.historyRetentionMs) {
      throw new TopologyError(`${op} "${name}": gracePeriodMs (${graceMs}) exceeds the table's historyRetentionMs (${getter.historyRetentionMs}); the rows it would read are gone by then. Lower the grace or raise the retention.`);
    }
    const keySerde = opts.keySerde ?? stream.keySerde ?? Serdes.msgpack<K>();
    const valueSerde = opts.valueSerde ?? stream.valueSerde ?? Serdes.msgpack<V>();
    const store = `${name}-buffer`;
    const id = (n: string): Serde<Buffer> => ({ name: n, serialize: (x) => x, deserialize: (x) => x });
    b.addStore({ name: store, kind: 'keyValue', keySerde: id('join-buffer-key'), valueSerde: id(`join-buffer-value<${keySerde.name},${valueSerde.name}>`), logging: true, caching: true, rangeScans: true }, op);
    grace = { store, graceMs, keySerde, valueSerde };
  }
  const stores = grace === undefined ? [...getter.stores] : [...getter.stores, grace.store];
  b.addProcessor({ name, operator: `stream-table ${op}`, parents: [parent], supplier: () => new StreamTableJoinProcessor(getter, joiner, left, grace), stores });
  copartition(b, [parent, table.node]);
  return new KStream<K, VR>(b, name, stream.keySerde ?? opts.keySerde, undefined, false);
}

export function streamStreamJoin<K, V, VO, VR>(
  left: KStream<K, V>,
  right: KStream<K, VO>,
  joiner: (value: any, otherValue: any, key: K) => VR,
  opts: StreamJoinedOptions<K, V, VO>,
  kind: JoinKind,
): KStream<K, VR> {
  const op = kindName(kind);
  const b = left.builder;
  checkBuilder(b, right, op);
  requireFunction(joiner, op, '(value, otherValue) => joined');
  const name = joinName(opts, op, `${op}(payments, (order, payment) => ({ order, payment }), { name: 'orders-payments', windows: JoinWindows.ofTimeDifferenceAndGrace(3_600_000, 60_000) })`);
  const w = opts.windows;
  if (!(w instanceof JoinWindows)) {
    throw new TopologyError(`${op} "${name}": a stream-stream join needs windows, e.g. { name: '${name}', windows: JoinWindows.ofTimeDifferenceWithNoGrace(60_000) }.`);
  }
  const keySerde = opts.keySerde ?? left.keySerde ?? right.keySerde ?? Serdes.msgpack<K>();
  const thisSerde = opts.valueSerde ?? left.valueSerde ?? Serdes.msgpack<V>();
  const otherSerde = opts.otherValueSerde ?? right.valueSerde ?? Serdes.msgpack<VO>();
  const leftParent = sideNode(left, name, 'left', op, keySerde, thisSerde);
  const rightParent = sideNode(right, name, 'right', op, keySerde, otherSerde);
  const retentionMs = w.beforeMs + w.afterMs + w.graceMs + 1;
  const windowSizeMs = Math.max(1, w.beforeMs + w.afterMs);
  const logging = opts.logging ?? true;
  const thisStore = `${name}-this-join-store`;
  const otherStore = `${name}-other-join-store`;
  const outerStore = kind === 'inner' ? undefined : `${name}-outer-shared-join-store`;
  b.addStore({ name: thisStore, kind: 'window', keySerde, valueSerde: listSerde(thisSerde), logging, caching: false, retentionMs, windowSizeMs }, op);
  b.addStore({ name: otherStore, kind: 'window', keySerde, valueSerde: listSerde(otherSerde), logging, caching: false, retentionMs, windowSizeMs }, op);
  if (outerStore !== undefined) {
    b.addStore({ name: outerStore, kind: 'keyValue', keySerde: outerKeySerde(keySerde), valueSerde: Serdes.bytes(), logging, caching: false, rangeScans: true }, op);
  }
  const stores = outerStore === undefined ? [thisStore, otherStore] : [thisStore, otherStore, outerStore];
  const trackers = new WeakMap<object, JoinTimeTracker>();
  const common = { outerStore, graceMs: w.graceMs, windowBeforeMs: w.beforeMs, windowAfterMs: w.afterMs, retentionMs, trackers };
  const thisName = `${name}-this`;
  const otherName = `${name}-other`;
  b.addProcessor({
    name: b.nodeName(thisName, 'KSTREAM-JOINTHIS', op),
    operator: `stream-stream ${op} (this)`,
    parents: [leftParent],
    supplier: () =>
      new StreamStreamJoinProcessor<K, V, VO, VR>(
        { ...common, thisStore, otherStore, thisIsLeft: true, beforeMs: w.beforeMs, afterMs: w.afterMs, outer: kind !== 'inner', thisSerde, otherSerde },
        joiner,
      ),
    stores,
  });
  b.addProcessor({
    name: b.nodeName(otherName, 'KSTREAM-JOINOTHER', op),
    operator: `stream-stream ${op} (other)`,
    parents: [rightParent],
    supplier: () =>
      new StreamStreamJoinProcessor<K, VO, V, VR>(
        { ...common, thisStore: otherStore, otherStore: thisStore, thisIsLeft: false, beforeMs: w.afterMs, afterMs: w.beforeMs, outer: kind === 'outer', thisSerde: otherSerde, otherSerde: thisSerde },
        joiner,
      ),
    stores,
  });
  b.addProcessor({ name, operator: `stream-stream ${op} (merge)`, parents: [thisName, otherName], supplier: () => new PassThroughProcessor(), stores: [] });
  copartition(b, [leftParent, rightParent]);
  return new KStream<K, VR>(b, name, keySerde, undefined, false);
}

export function tableTableJoin<K, V, VO, VR>(
  left: KTable<K, V>,
  right: KTable<K, VO>,
  joiner: (value: any, otherValue: any, key: K) => VR,
  opts: TableJoinedOptions,
  kind: JoinKind,
): KTable<K, VR> {
  const op = `KTable.${kindName(kind)}`;
  const b = left.builder;
  if (!(right instanceof KTable)) throw new TopologyError(`${op}: the other side must be a KTable.`);
  checkBuilder(b, right, op);
  requireFunction(joiner, op, '(value, otherValue) => joined');
  const name = joinName(opts, op, `${kindName(kind)}(regions, (customer, region) => ({ ...customer, region }), { name: 'customers-with-regions' })`);
  const lg = tableGetter(left, op, name);
  const rg = tableGetter(right, op, name);
  const thisName = b.nodeName(`${name}-join-this`, 'KTABLE-JOINTHIS', op);
  b.addProcessor({ name: thisName, operator: `table-table ${kindName(kind)} (this)`, parents: [left.node], supplier: () => new TableTableJoinProcessor(kind, true, rg, joiner), stores: [...rg.stores] });
  const otherName = b.nodeName(`${name}-join-other`, 'KTABLE-JOINOTHER', op);
  b.addProcessor({ name: otherName, operator: `table-table ${kindName(kind)} (other)`, parents: [right.node], supplier: () => new TableTableJoinProcessor(kind, false, lg, joiner), stores: [...lg.stores] });
  b.addProcessor({ name, operator: `table-table ${kindName(kind)} (merge)`, parents: [thisName, otherName], supplier: () => new PassThroughProcessor(), stores: [] });
  copartition(b, [left.node, right.node]);
  const getter: ValueGetter<K, VR> = {
    stores: [...new Set([...lg.stores, ...rg.stores])],
    connect(ctx) {
      const gl = lg.connect(ctx);
      const gr = rg.connect(ctx);
      // The joined row's timestamp is the larger of the two rows' (KTableKTableJoinValueGetter).
      return (key) => {
        const l = gl(key);
        const r = gr(key);
        if (l === undefined && r === undefined) return undefined;
        if (kind === 'inner' && (l === undefined || r === undefined)) return undefined;
        if (kind === 'left' && l === undefined) return undefined;
        const value = joiner(l === undefined ? null : l.value, r === undefined ? null : r.value, key);
        const timestamp = l === undefined ? r!.timestamp : r === undefined ? l.timestamp : Math.max(l.timestamp, r.timestamp);
        return { value, timestamp };
      };
    },
  };
  return new KTable<K, VR>(b, name, left.keySerde ?? right.keySerde, undefined, undefined, getter);
}

export interface GlobalJoinedOptions<K, V, GK> {
  /** Required: names the join's node. */
  readonly name: string;
  /** Maps a stream record to the global table's key; null/undefined: no row. */
  readonly keyMapper: (key: K, value: V) => GK | null | undefined;
}

export function streamGlobalJoin<K, V, GK, GV, VR>(
  stream: KStream<K, V>,
  table: GlobalKTable<GK, GV>,
  joiner: (value: V, globalValue: any, key: K) => VR,
  opts: GlobalJoinedOptions<K, V, GK>,
  left: boolean,
): KStream<K, VR> {
  const op = left ? 'leftJoin (global table)' : 'join (global table)';
  const b = stream.builder;
  checkBuilder(b, table, op);
  requireFunction(joiner, op, '(value, globalValue) => joined');
  const name = joinName(opts, op, `${left ? 'leftJoin' : 'join'}(products, (order, product) => ({ ...order, product }), { name: 'orders-products', keyMapper: (_k, o) => o.productId })`);
  requireFunction(opts.keyMapper, op, '(key, value) => globalTableKey');
  const store = table.queryableStoreName;
  b.addProcessor({ name, operator: `stream-globaltable ${left ? 'leftJoin' : 'join'}`, parents: [stream.node], supplier: () => new StreamGlobalJoinProcessor(store, opts.keyMapper, joiner, left), stores: [store] });
  return new KStream<K, VR>(b, name, stream.keySerde, undefined, stream.keyChanged);
}
