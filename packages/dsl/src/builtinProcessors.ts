/**
 * The processors behind the built-in DSL operators. Each is a small class: the per-record path
 * allocates at most the record it forwards.
 */
import type { Change, Processor, ProcessorContext, StreamRecord } from './processor.js';
import type { FlushListenable, KeyValue, KeyValueStore } from './stores.js';
import type { ValueAndTimestamp } from './timestamped.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Ctx = ProcessorContext<any, any>;

abstract class Base<KIn, VIn> implements Processor<KIn, VIn, any, any> {
  protected ctx!: Ctx;
  init(context: Ctx): void {
    this.ctx = context;
  }
  abstract process(record: StreamRecord<KIn, VIn>): void;
}

export class FilterProcessor<K, V> extends Base<K, V> {
  constructor(private readonly predicate: (key: K, value: V) => boolean, private readonly expected: boolean) {
    super();
  }
  process(r: StreamRecord<K, V>): void {
    if (Boolean(this.predicate(r.key, r.value)) === this.expected) this.ctx.forward(r);
  }
}

export class MapProcessor<K, V, K2, V2> extends Base<K, V> {
  constructor(private readonly mapper: (key: K, value: V) => KeyValue<K2, V2>) {
    super();
  }
  process(r: StreamRecord<K, V>): void {
    const kv = this.mapper(r.key, r.value);
    this.ctx.forward({ key: kv.key, value: kv.value, timestamp: r.timestamp, headers: r.headers });
  }
}

export class MapValuesProcessor<K, V, V2> extends Base<K, V> {
  constructor(private readonly mapper: (value: V, key: K) => V2) {
    super();
  }
  process(r: StreamRecord<K, V>): void {
    this.ctx.forward({ key: r.key, value: this.mapper(r.value, r.key), timestamp: r.timestamp, headers: r.headers });
  }
}

export class SelectKeyProcessor<K, V, K2> extends Base<K, V> {
  constructor(private readonly selector: (key: K, value: V) => K2) {
    super();
  }
  process(r: StreamRecord<K, V>): void {
    this.ctx.forward({ key: this.selector(r.key, r.value), value: r.value, timestamp: r.timestamp, headers: r.headers });
  }
}

export class FlatMapProcessor<K, V, K2, V2> extends Base<K, V> {
  constructor(private readonly mapper: (key: K, value: V) => Iterable<KeyValue<K2, V2>>) {
    super();
  }
  process(r: StreamRecord<K, V>): void {
    for (const kv of this.mapper(r.key, r.value)) {
      this.ctx.forward({ key: kv.key, value: kv.value, timestamp: r.timestamp, headers: r.headers });
    }
  }
}

export class FlatMapValuesProcessor<K, V, V2> extends Base<K, V> {
  constructor(private readonly mapper: (value: V, key: K) => Iterable<V2>) {
    super();
  }
  process(r: StreamRecord<K, V>): void {
    const out = this.mapper(r.value, r.key);
    if (Array.isArray(out)) {
      // Fast path for arrays: no iterator object.
      for (let i = 0; i < out.length; i++) {
        this.ctx.forward({ key: r.key, value: out[i] as V2, timestamp: r.timestamp, headers: r.headers });
      }
      return;
    }
    for (const v of out) this.ctx.forward({ key: r.key, value: v, timestamp: r.timestamp, headers: r.headers });
  }
}

export class PeekProcessor<K, V> extends Base<K, V> {
  constructor(private readonly action: (key: K, value: V) => void, private readonly forwards: boolean) {
    super();
  }
  process(r: StreamRecord<K, V>): void {
    this.action(r.key, r.value);
    if (this.forwards) this.ctx.forward(r);
  }
}

export class PassThroughProcessor<K, V> extends Base<K, V> {
  process(r: StreamRecord<K, V>): void {
    this.ctx.forward(r);
  }
}

export class SplitProcessor<K, V> extends Base<K, V> {
  constructor(
    private readonly predicates: readonly ((key: K, value: V) => boolean)[],
    private readonly children: readonly string[],
    private readonly defaultChild: string | undefined,
  ) {
    super();
  }
  process(r: StreamRecord<K, V>): void {
    for (let i = 0; i < this.predicates.length; i++) {
      if (this.predicates[i]!(r.key, r.value)) {
        this.ctx.forward(r, this.children[i]);
        return;
      }
    }
    if (this.defaultChild !== undefined) this.ctx.forward(r, this.defaultChild);
  }
}

/**
 * With a record cache (StoreSpec.caching and a task cache size > 0), a table-producing operator
 * emits one update per key per commit, from the cache's flush listener, as Kafka Streams does;
 * the change's old value is the value at the previous commit. Without a cache it emits every
 * update at once. Returns true if the cache emits.
 */
export function emitOnFlush(ctx: Ctx, store: unknown, timestamped = false): boolean {
  const s = store as Partial<FlushListenable<unknown, unknown>>;
  if (typeof s.setFlushListener !== 'function') return false;
  if (timestamped) {
    // The store holds ValueAndTimestamp: forward the plain values, stamped with the result's timestamp.
    return s.setFlushListener((key, newValue, oldValue, timestamp) => {
      if (newValue === undefined && oldValue === undefined) return;
      const n = newValue as ValueAndTimestamp<unknown> | undefined;
      const o = oldValue as ValueAndTimestamp<unknown> | undefined;
      const change: Change<unknown> = { newValue: n === undefined ? null : n.value, oldValue: o === undefined ? null : o.value };
      ctx.forward({ key, value: change, timestamp: n === undefined ? timestamp : n.timestamp, headers: undefined });
    });
  }
  return s.setFlushListener((key, newValue, oldValue, timestamp) => {
    if (newValue === undefined && oldValue === undefined) return;
    const change: Change<unknown> = { newValue: newValue === undefined ? null : newValue, oldValue: oldValue === undefined ? null : oldValue };
    ctx.forward({ key, value: change, timestamp, headers: undefined });
  });
}

/**
 * Stream aggregation (count, reduce, aggregate): one store update and one change per record. The
 * result's timestamp is the largest timestamp of the records aggregated so far (KStreamAggregate).
 */
export class StreamAggregateProcessor<K, V, VA> extends Base<K, V> {
  private store!: KeyValueStore<K, ValueAndTimestamp<VA>>;
  private cached = false;
  constructor(
    private readonly storeName: string,
    private readonly initializer: (() => VA) | undefined,
    private readonly aggregator: (key: K, value: V, aggregate: VA) => VA,
  ) {
    super();
  }
  override init(context: Ctx): void {
    super.init(context);
    this.store = context.getStateStore<KeyValueStore<K, ValueAndTimestamp<VA>>>(this.storeName);
    this.cached = emitOnFlush(context, this.store, true);
  }
  process(r: StreamRecord<K, V>): void {
    if (r.key === null || r.key === undefined || r.value === null || r.value === undefined) {
      this.ctx.recordDropped(r.key == null ? 'null key in aggregation' : 'null value in aggregation');
      return;
    }
    const old = this.store.get(r.key);
    let agg: VA;
    let ts = r.timestamp;
    if (old === undefined) {
      agg = this.initializer === undefined ? (r.value as unknown as VA) : this.aggregator(r.key, r.value, this.initializer());
    } else {
      agg = this.aggregator(r.key, r.value, old.value);
      if (old.timestamp > ts) ts = old.timestamp;
    }
    this.store.put(r.key, { value: agg, timestamp: ts });
    if (this.cached) return;
    const change: Change<VA> = { newValue: agg, oldValue: old === undefined ? null : old.value };
    this.ctx.forward({ key: r.key, value: change, timestamp: ts, headers: r.headers });
  }
}

/** Materializes a changelog stream (builder.table, KStream.toTable) and emits changes with old values. */
export class TableSourceProcessor<K, V> extends Base<K, V | null> {
  private store!: KeyValueStore<K, ValueAndTimestamp<V>>;
  private cached = false;
  constructor(private readonly storeName: string) {
    super();
  }
  override init(context: Ctx): void {
    super.init(context);
    this.store = context.getStateStore<KeyValueStore<K, ValueAndTimestamp<V>>>(this.storeName);
    this.cached = emitOnFlush(context, this.store, true);
  }
  process(r: StreamRecord<K, V | null>): void {
    if (r.key === null || r.key === undefined) {
      this.ctx.recordDropped('null key in table');
      return;
    }
    let old: ValueAndTimestamp<V> | undefined;
    if (r.value === null || r.value === undefined) {
      old = this.store.delete(r.key);
      if (old === undefined) return; // deleting an absent key changes nothing
    } else {
      old = this.store.get(r.key);
      this.store.put(r.key, { value: r.value, timestamp: r.timestamp });
    }
    if (this.cached) return;
    const change: Change<V> = { newValue: r.value ?? null, oldValue: old === undefined ? null : old.value };
    this.ctx.forward({ key: r.key, value: change, timestamp: r.timestamp, headers: r.headers });
  }
}

export class TableFilterProcessor<K, V> extends Base<K, Change<V>> {
  constructor(private readonly predicate: (key: K, value: V) => boolean, private readonly expected: boolean) {
    super();
  }
  process(r: StreamRecord<K, Change<V>>): void {
    const c = r.value;
    const newValue = c.newValue !== null && Boolean(this.predicate(r.key, c.newValue)) === this.expected ? c.newValue : null;
    const oldValue = c.oldValue !== null && Boolean(this.predicate(r.key, c.oldValue)) === this.expected ? c.oldValue : null;
    if (newValue === null && oldValue === null) return; // not in the filtered table before or after
    this.ctx.forward({ key: r.key, value: { newValue, oldValue }, timestamp: r.timestamp, headers: r.headers });
  }
}

export class TableMapValuesProcessor<K, V, V2> extends Base<K, Change<V>> {
  constructor(private readonly mapper: (value: V, key: K) => V2) {
    super();
  }
  process(r: StreamRecord<K, Change<V>>): void {
    const c = r.value;
    const change: Change<V2> = {
      newValue: c.newValue === null ? null : this.mapper(c.newValue, r.key),
      oldValue: c.oldValue === null ? null : this.mapper(c.oldValue, r.key),
    };
    this.ctx.forward({ key: r.key, value: change, timestamp: r.timestamp, headers: r.headers });
  }
}

export class TableToStreamProcessor<K, V> extends Base<K, Change<V>> {
  process(r: StreamRecord<K, Change<V>>): void {
    this.ctx.forward({ key: r.key, value: r.value.newValue, timestamp: r.timestamp, headers: r.headers });
  }
}

/**
 * KTable.groupBy: re-keys each change as a subtraction of the old value (under its old group) and
 * an addition of the new one; when both fall in the same group, one record carries both.
 */
export class TableGroupByProcessor<K, V, K2, V2> extends Base<K, Change<V>> {
  constructor(private readonly selector: (key: K, value: V) => KeyValue<K2, V2>) {
    super();
  }
  process(r: StreamRecord<K, Change<V>>): void {
    const c = r.value;
    const oldKv = c.oldValue === null ? undefined : this.selector(r.key, c.oldValue);
    const newKv = c.newValue === null ? undefined : this.selector(r.key, c.newValue);
    // Same group (primitive key): one update carrying both, so the aggregate changes once.
    if (oldKv !== undefined && newKv !== undefined && oldKv.key === newKv.key) {
      this.ctx.forward({ key: newKv.key, value: { newValue: newKv.value, oldValue: oldKv.value }, timestamp: r.timestamp, headers: r.headers });
      return;
    }
    if (oldKv !== undefined) {
      this.ctx.forward({ key: oldKv.key, value: { newValue: null, oldValue: oldKv.value }, timestamp: r.timestamp, headers: r.headers });
    }
    if (newKv !== undefined) {
      this.ctx.forward({ key: newKv.key, value: { newValue: newKv.value, oldValue: null }, timestamp: r.timestamp, headers: r.headers });
    }
  }
}

/**
 * KGroupedTable aggregation: subtract the old value, add the new one. The result's timestamp is
 * the largest of the update's and the previous result's (KTableAggregate / KTableReduce).
 */
export class TableAggregateProcessor<K, V, VA> extends Base<K, Change<V>> {
  private store!: KeyValueStore<K, ValueAndTimestamp<VA>>;
  private cached = false;
  constructor(
    private readonly storeName: string,
    private readonly initializer: (() => VA) | undefined,
    private readonly adder: (key: K, value: V, aggregate: VA) => VA,
    private readonly subtractor: (key: K, value: V, aggregate: VA) => VA,
  ) {
    super();
  }
  override init(context: Ctx): void {
    super.init(context);
    this.store = context.getStateStore<KeyValueStore<K, ValueAndTimestamp<VA>>>(this.storeName);
    this.cached = emitOnFlush(context, this.store, true);
  }
  process(r: StreamRecord<K, Change<V>>): void {
    if (r.key === null || r.key === undefined) {
      this.ctx.recordDropped('null key in table aggregation');
      return;
    }
    const oldVt = this.store.get(r.key);
    const old = oldVt?.value;
    let agg: VA | undefined = old;
    if (r.value.oldValue !== null && agg !== undefined) agg = this.subtractor(r.key, r.value.oldValue, agg);
    if (r.value.newValue !== null) {
      if (agg === undefined) {
        agg = this.initializer === undefined ? (r.value.newValue as unknown as VA) : this.adder(r.key, r.value.newValue, this.initializer());
      } else {
        agg = this.adder(r.key, r.value.newValue, agg);
      }
    }
    if (agg === undefined) return;
    const ts = oldVt !== undefined && oldVt.timestamp > r.timestamp ? oldVt.timestamp : r.timestamp;
    this.store.put(r.key, { value: agg, timestamp: ts });
    if (this.cached) return;
    this.ctx.forward({ key: r.key, value: { newValue: agg, oldValue: old === undefined ? null : old }, timestamp: ts, headers: r.headers });
  }
}

/**
 * Drops a record whose id was already seen within `retentionMs` of stream time. The store maps
 * id -> timestamp of the first sighting; a stream-time punctuator purges expired ids.
 */
export class DedupeProcessor<K, V> extends Base<K, V> {
  private store!: KeyValueStore<string, number>;
  constructor(
    private readonly storeName: string,
    private readonly idOf: (key: K, value: V) => string,
    private readonly retentionMs: number,
    private readonly purgeIntervalMs: number,
  ) {
    super();
  }
  override init(context: Ctx): void {
    super.init(context);
    this.store = context.getStateStore<KeyValueStore<string, number>>(this.storeName);
    context.schedule(this.purgeIntervalMs, 'stream-time', (now) => this.purge(now));
  }
  process(r: StreamRecord<K, V>): void {
    const id = this.idOf(r.key, r.value);
    if (id === null || id === undefined) {
      this.ctx.forward(r); // nothing to deduplicate on
      return;
    }
    const seen = this.store.get(id);
    if (seen !== undefined && seen >= this.ctx.currentStreamTimeMs() - this.retentionMs) {
      this.ctx.recordDropped('duplicate');
      return;
    }
    this.store.put(id, r.timestamp);
    this.ctx.forward(r);
  }
  private purge(streamTime: number): void {
    const cutoff = streamTime - this.retentionMs;
    const expired: string[] = [];
    for (const kv of this.store.all()) if (kv.value < cutoff) expired.push(kv.key);
    for (const id of expired) this.store.delete(id);
  }
}
