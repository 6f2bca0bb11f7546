/**
 * The processors behind joins, following Kafka Streams' documented join semantics
 * (https://kafka.apache.org/documentation/streams/developer-guide/dsl-api.html#joining).
 */
import type { Change, Processor, ProcessorContext, StreamRecord } from './processor.js';
import type { Serde } from './serde.js';
import { readInt64, writeInt64 } from './serdes.js';
import type { KeyValueStore, WindowStore } from './stores.js';
import type { ValueAndTimestamp } from './timestamped.js';
import type { ValueGetter } from './valueGetter.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Ctx = ProcessorContext<any, any>;

export type JoinKind = 'inner' | 'left' | 'outer';

/**
 * Stream-table join: each stream record looks up the table's current value for its key. Table
 * updates emit nothing. Records with a null value are dropped; a null key is dropped by `join`
 * and joined with `null` by `leftJoin` (KIP-962).
 */
export class StreamTableJoinProcessor<K, V, VT, VR> implements Processor<K, V, K, VR> {
  private ctx!: Ctx;
  private get!: (key: K) => ValueAndTimestamp<VT> | undefined;
  constructor(
    private readonly getter: ValueGetter<K, VT>,
    private readonly joiner: (value: V, tableValue: VT | null, key: K) => VR,
    private readonly left: boolean,
  ) {}
  init(ctx: Ctx): void {
    this.ctx = ctx;
    this.get = this.getter.connect(ctx);
  }
  process(r: StreamRecord<K, V>): void {
    if (r.value === null || r.value === undefined) {
      this.ctx.recordDropped('null value in join');
      return;
    }
    if (r.key === null || r.key === undefined) {
      if (!this.left) {
        this.ctx.recordDropped('null key in join');
        return;
      }
      this.ctx.forward({ key: r.key, value: this.joiner(r.value, null, r.key), timestamp: r.timestamp, headers: r.headers });
      return;
    }
    const tvt = this.get(r.key);
    const tv = tvt === undefined ? undefined : tvt.value;
    if (tv === undefined || tv === null) {
      if (!this.left) return;
      this.ctx.forward({ key: r.key, value: this.joiner(r.value, null, r.key), timestamp: r.timestamp, headers: r.headers });
      return;
    }
    this.ctx.forward({ key: r.key, value: this.joiner(r.value, tv, r.key), timestamp: r.timestamp, headers: r.headers });
  }
}

/**
 * One side of a table-table join (KTableKTableJoin / LeftJoin / RightJoin / OuterJoin): an update
 * of this side is joined with the other side's current value, old and new value alike.
 * `joiner` here always takes (left, right).
 */
export class TableTableJoinProcessor<K, VL, VR, VO> implements Processor<K, Change<any>, K, Change<VO>> {
  private ctx!: Ctx;
  private get!: (key: K) => ValueAndTimestamp<unknown> | undefined;
  constructor(
    private readonly kind: JoinKind,
    private readonly thisIsLeft: boolean,
    private readonly otherGetter: ValueGetter<K, unknown>,
    private readonly joiner: (left: VL | null, right: VR | null, key: K) => VO,
  ) {}
  init(ctx: Ctx): void {
    this.ctx = ctx;
    this.get = this.otherGetter.connect(ctx);
  }
  private j(thisValue: unknown, other: unknown, key: K): VO {
    return this.thisIsLeft ? this.joiner(thisValue as VL | null, other as VR | null, key) : this.joiner(other as VL | null, thisValue as VR | null, key);
  }
  process(r: StreamRecord<K, Change<unknown>>): void {
    if (r.key === null || r.key === undefined) {
      this.ctx.recordDropped('null key in table join');
      return;
    }
    const o = this.get(r.key);
    const other = o === undefined || o.value === undefined ? null : o.value;
    const c = r.value;
    let newValue: VO | null = null;
    let oldValue: VO | null = null;
    // Does this side's value alone produce a row? (outer: always; left: only the left side.)
    const thisSuffices = this.kind === 'outer' || (this.kind === 'left' && this.thisIsLeft);
    // Does the other side's value alone produce a row? (outer: always; left: only when the other is the left side.)
    const otherSuffices = this.kind === 'outer' || (this.kind === 'left' && !this.thisIsLeft);
    if (other === null && !thisSuffices) return;
    if (other === null && c.newValue === null && c.oldValue === null) return;
    if (c.newValue !== null ? other !== null || thisSuffices : other !== null && otherSuffices) newValue = this.j(c.newValue, other, r.key);
    if (c.oldValue !== null ? other !== null || thisSuffices : other !== null && otherSuffices) oldValue = this.j(c.oldValue, other, r.key);
    if (newValue === null && oldValue === null) return;
    // The result carries the larger of the two rows' timestamps (KTableKTableJoin).
    const ts = o !== undefined && other !== null && o.timestamp > r.timestamp ? o.timestamp : r.timestamp;
    this.ctx.forward({ key: r.key, value: { newValue, oldValue }, timestamp: ts, headers: r.headers });
  }
}

/** Values of one key and timestamp in a join buffer: a record may repeat (key, timestamp). */
export function listSerde<V>(inner: Serde<V>): Serde<V[]> {
  return {
    name: `list<${inner.name}>`,
    serialize(values, topic) {
      const parts = values.map((v) => inner.serialize(v, topic));
      let n = 0;
      for (const p of parts) n += 4 + p.length;
      const buf = Buffer.allocUnsafe(n);
      let o = 0;
      for (const p of parts) {
        buf.writeUInt32BE(p.length, o);
        p.copy(buf, o + 4);
        o += 4 + p.length;
      }
      return buf;
    },
    deserialize(data, topic) {
      const out: V[] = [];
      for (let o = 0; o < data.length; ) {
        const len = data.readUInt32BE(o);
        out.push(inner.deserialize(data.subarray(o + 4, o + 4 + len), topic));
        o += 4 + len;
      }
      return out;
    },
  };
}

/**
 * Key of the outer-join buffer: timestamp, side (0 right, 1 left), key bytes, as Kafka Streams'
 * TimestampedKeyAndJoinSide, so a scan meets records in the order Kafka Streams emits them: by
 * timestamp, then right side before left, then by key bytes.
 */
export interface OuterKey<K> {
  readonly timestamp: number;
  readonly left: boolean;
  readonly key: K;
}

export function outerKeySerde<K>(inner: Serde<K>): Serde<OuterKey<K>> {
  return {
    name: `outer-join-key<${inner.name}>`,
    serialize(k, topic) {
      const kb = inner.serialize(k.key, topic);
      const buf = Buffer.allocUnsafe(9 + kb.length);
      writeInt64(buf, k.timestamp, 0);
      buf[8] = k.left ? 1 : 0;
      kb.copy(buf, 9);
      return buf;
    },
    deserialize(data, topic) {
      return { timestamp: readInt64(data, 0), left: data[8] === 1, key: inner.deserialize(data.subarray(9), topic) };
    },
  };
}

/** Stream time shared by the two sides of one stream-stream join in one task. */
export interface JoinTimeTracker {
  streamTime: number;
  /** Smallest timestamp in the outer buffer; -Infinity: unknown (scan). */
  minTime: number;
}

export interface StreamStreamJoinConfig {
  readonly thisStore: string;
  readonly otherStore: string;
  /** The outer buffer (left/outer joins), or undefined. */
  readonly outerStore: string | undefined;
  readonly thisIsLeft: boolean;
  /** Other records with timestamps in [t - before, t + after] join a record at t. */
  readonly beforeMs: number;
  readonly afterMs: number;
  readonly graceMs: number;
  /** The join windows' before and after (from the left side's view), for outer emission. */
  readonly windowBeforeMs: number;
  readonly windowAfterMs: number;
  /** Whether an unmatched record of this side is emitted (left join: left side only; outer: both). */
  readonly outer: boolean;
  readonly retentionMs: number;
  readonly thisSerde: Serde<any>;
  readonly otherSerde: Serde<any>;
  /** Shared by the two sides of the join in one task (keyed by the task's left buffer store). */
  readonly trackers: WeakMap<object, JoinTimeTracker>;
}

/**
 * One side of a stream-stream windowed join (KStreamKStreamJoin with the spurious-results fix):
 * the record is buffered in this side's window store and joined with the other side's buffered
 * records in its window. Unmatched records of a left/outer side wait in a shared outer buffer
 * and are emitted with `null` once stream time passes their window end + grace, unless a match
 * arrives first.
 */
export class StreamStreamJoinProcessor<K, V, VO, VR> implements Processor<K, V, K, VR> {
  private ctx!: Ctx;
  private thisStore!: WindowStore<K, V[]>;
  private otherStore!: WindowStore<K, VO[]>;
  private outerStore: KeyValueStore<OuterKey<K>, Buffer> | undefined;
  private tracker!: JoinTimeTracker;
  private readonly thisList: Serde<V[]>;
  private readonly otherList: Serde<VO[]>;
  constructor(
    private readonly cfg: StreamStreamJoinConfig,
    private readonly joiner: (left: any, right: any, key: K) => VR,
  ) {
    this.thisList = listSerde(cfg.thisSerde);
    this.otherList = listSerde(cfg.otherSerde);
  }
  init(ctx: Ctx): void {
    this.ctx = ctx;
    this.thisStore = ctx.getStateStore<WindowStore<K, V[]>>(this.cfg.thisStore);
    this.otherStore = ctx.getStateStore<WindowStore<K, VO[]>>(this.cfg.otherStore);
    this.outerStore = this.cfg.outerStore === undefined ? undefined : ctx.getStateStore<KeyValueStore<OuterKey<K>, Buffer>>(this.cfg.outerStore);
    // One tracker per task and join: keyed by the task's left buffer, the one store object both sides share.
    const leftStore = this.cfg.thisIsLeft ? this.thisStore : this.otherStore;
    let t = this.cfg.trackers.get(leftStore);
    if (t === undefined) this.cfg.trackers.set(leftStore, (t = { streamTime: -1, minTime: Number.NEGATIVE_INFINITY }));
    this.tracker = t;
  }
  private join(thisValue: V | null, otherValue: VO | null, key: K): VR {
    return this.cfg.thisIsLeft ? this.joiner(thisValue, otherValue, key) : this.joiner(otherValue, thisValue, key);
  }
  process(r: StreamRecord<K, V>): void {
    const cfg = this.cfg;
    const ts = r.timestamp;
    const tracker = this.tracker;
    if (ts > tracker.streamTime) tracker.streamTime = ts;
    if (r.value === null || r.value === undefined) {
      this.ctx.recordDropped('null value in join');
      return;
    }
    if (r.key === null || r.key === undefined) {
      if (cfg.outer) this.ctx.forward({ key: r.key, value: this.join(r.value, null, r.key), timestamp: ts, headers: r.headers });
      else this.ctx.recordDropped('null key in join');
      return;
    }
    // Buffer this record for the other side (a record past retention could never be joined again).
    if (ts > tracker.streamTime - cfg.retentionMs) {
      const existing = this.thisStore.fetch(r.key, ts);
      if (existing === undefined) this.thisStore.put(r.key, [r.value], ts);
      else this.thisStore.put(r.key, [...existing, r.value], ts);
    } else {
      this.ctx.recordDropped('late record (join window closed)');
    }
    if (this.outerStore !== undefined && ts === tracker.streamTime) this.emitClosed(r);
    const from = Math.max(0, ts - cfg.beforeMs);
    const to = Math.max(0, ts + cfg.afterMs);
    let matched = false;
    for (const other of this.otherStore.fetchRange(r.key, from, to)) {
      matched = true;
      // A matched record of the other side will never need its null-joined result.
      this.outerStore?.delete({ timestamp: other.key, left: !cfg.thisIsLeft, key: r.key });
      const outTs = Math.max(ts, other.key);
      for (const ov of other.value) this.ctx.forward({ key: r.key, value: this.join(r.value, ov, r.key), timestamp: outTs, headers: r.headers });
    }
    if (matched || !cfg.outer) return;
    if (this.outerStore === undefined || to < tracker.streamTime) {
      this.ctx.forward({ key: r.key, value: this.join(r.value, null, r.key), timestamp: ts, headers: r.headers });
      return;
    }
    if (ts < tracker.minTime || tracker.minTime === Number.POSITIVE_INFINITY) tracker.minTime = ts;
    const k: OuterKey<K> = { timestamp: ts, left: cfg.thisIsLeft, key: r.key };
    const prev = this.outerStore.get(k);
    const list = prev === undefined ? [r.value] : [...this.thisList.deserialize(prev), r.value];
    this.outerStore.put(k, this.thisList.serialize(list));
  }

  /** Emits buffered unmatched records whose join window has closed (in timestamp order). */
  private emitClosed(r: StreamRecord<K, V>): void {
    const cfg = this.cfg;
    const t = this.tracker;
    const store = this.outerStore!;
    if (t.minTime + Math.min(cfg.windowAfterMs, cfg.windowBeforeMs) + cfg.graceMs >= t.streamTime) return;
    let leftOpen = false;
    let rightOpen = false;
    let min = Number.POSITIVE_INFINITY;
    const done: OuterKey<K>[] = [];
    for (const kv of store.all()) {
      if (leftOpen && rightOpen) break;
      const k = kv.key;
      // A left record waits for right records up to `after` later; a right record for left records up to `before` later.
      const lookAhead = k.left ? cfg.windowAfterMs : cfg.windowBeforeMs;
      if (k.timestamp + lookAhead + cfg.graceMs >= t.streamTime) {
        if (k.timestamp < min) min = k.timestamp;
        if (k.left) leftOpen = true;
        else rightOpen = true;
        continue;
      }
      const thisSide = k.left === cfg.thisIsLeft;
      const values = (thisSide ? this.thisList : this.otherList).deserialize(kv.value);
      for (const v of values) {
        const value = k.left ? this.joiner(v, null, k.key) : this.joiner(null, v, k.key);
        this.ctx.forward({ key: k.key, value, timestamp: k.timestamp, headers: r.headers });
      }
      done.push(k);
    }
    for (const k of done) store.delete(k);
    t.minTime = min;
  }
}

/**
 * Stream-global table join: the stream record's key and value are mapped to the global table's
 * key, which is looked up in the (fully replicated) global store. A null value is dropped; a
 * null mapped key is dropped by `join` and joined with `null` by `leftJoin`.
 */
export class StreamGlobalJoinProcessor<K, V, GK, GV, VR> implements Processor<K, V, K, VR> {
  private ctx!: Ctx;
  private store!: KeyValueStore<GK, GV>;
  constructor(
    private readonly storeName: string,
    private readonly keyMapper: (key: K, value: V) => GK | null | undefined,
    private readonly joiner: (value: V, globalValue: GV | null, key: K) => VR,
    private readonly left: boolean,
  ) {}
  init(ctx: Ctx): void {
    this.ctx = ctx;
    this.store = ctx.getStateStore<KeyValueStore<GK, GV>>(this.storeName);
  }
  process(r: StreamRecord<K, V>): void {
    if (r.value === null || r.value === undefined) {
      this.ctx.recordDropped('null value in join');
      return;
    }
    const gk = this.keyMapper(r.key, r.value);
    const gv = gk === null || gk === undefined ? undefined : this.store.get(gk);
    if (gv === undefined || gv === null) {
      if (!this.left) {
        if (gk === null || gk === undefined) this.ctx.recordDropped('null key in join');
        return;
      }
      this.ctx.forward({ key: r.key, value: this.joiner(r.value, null, r.key), timestamp: r.timestamp, headers: r.headers });
      return;
    }
    this.ctx.forward({ key: r.key, value: this.joiner(r.value, gv, r.key), timestamp: r.timestamp, headers: r.headers });
  }
}
