/**
 * The processors behind joins, following Kafka Streams' documented join semantics
 * (https://kafka.apache.org/documentation/streams/developer-guide/dsl-api.html#joining).
 */
import type { Change, Processor, ProcessorContext, StreamRecord } from './processor.js';
import type { Serde } from './serde.js';
import { readInt64, writeInt64 } from './serdes.js';
import { decodeHeaders, encodeHeaders } from './collector.js';
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
 *
 * Over a versioned table (KIP-914) the lookup is the row valid at the stream record's timestamp.
 * With a grace period (KIP-923, versioned tables only) stream records wait in the change-logged
 * buffer store until stream time reaches their timestamp + grace, then join in timestamp order, so
 * table updates that arrive up to `grace` late still count; a record already older than stream
 * time - grace joins at once.
 */
export interface JoinGrace<K, V> {
  readonly store: string;
  readonly graceMs: number;
  readonly keySerde: Serde<K>;
  readonly valueSerde: Serde<V>;
}

const GRACE_STREAM_TIME = Buffer.from([0]);
const GRACE_SEQ = Buffer.from([1]);
const GRACE_FROM = Buffer.from([2]);
const GRACE_TO = Buffer.from([3]);

export class StreamTableJoinProcessor<K, V, VT, VR> implements Processor<K, V, K, VR> {
  private ctx!: Ctx;
  private get!: (key: K, timestamp: number) => ValueAndTimestamp<VT> | undefined;
  private buffer: KeyValueStore<Buffer, Buffer> | undefined;
  private loaded = false;
  private observed = -1;
  private seq = 0;
  private minBuffered = Number.POSITIVE_INFINITY;
  constructor(
    private readonly getter: ValueGetter<K, VT>,
    private readonly joiner: (value: V, tableValue: VT | null, key: K) => VR,
    private readonly left: boolean,
    private readonly grace?: JoinGrace<K, V>,
  ) {}
  init(ctx: Ctx): void {
    this.ctx = ctx;
    if (this.getter.connectVersioned !== undefined) this.get = this.getter.connectVersioned(ctx);
    else {
      const latest = this.getter.connect(ctx);
      this.get = (key) => latest(key);
    }
    if (this.grace !== undefined) this.buffer = ctx.getStateStore<KeyValueStore<Buffer, Buffer>>(this.grace.store);
  }
  process(r: StreamRecord<K, V>): void {
    const buffer = this.buffer;
    if (buffer === undefined || r.key === null || r.key === undefined || r.value === null || r.value === undefined) {
      this.join(r);
      return;
    }
    const grace = this.grace!;
    if (!this.loaded) this.load(buffer);
    if (r.timestamp > this.observed) {
      this.observed = r.timestamp;
      buffer.put(GRACE_STREAM_TIME, int64(r.timestamp));
    }
    const horizon = this.observed - grace.graceMs;
    if (r.timestamp < horizon) {
      this.join(r); // too late to wait: joins now, as Kafka Streams does
    } else {
      const k = grace.keySerde.serialize(r.key);
      const v = grace.valueSerde.serialize(r.value);
      const key = Buffer.allocUnsafe(17);
      key[0] = 2;
      writeInt64(key, r.timestamp, 1);
      writeInt64(key, this.seq++, 9);
      buffer.put(GRACE_SEQ, int64(this.seq));
      const h = encodeHeaders(r.headers);
      const value = Buffer.allocUnsafe(8 + k.length + v.length + h.length);
      value.writeUInt32BE(k.length, 0);
      value.writeUInt32BE(v.length, 4);
      k.copy(value, 8);
      v.copy(value, 8 + k.length);
      h.copy(value, 8 + k.length + v.length);
      buffer.put(key, value);
      if (r.timestamp < this.minBuffered) this.minBuffered = r.timestamp;
    }
    if (this.minBuffered <= horizon) this.evict(buffer, horizon);
  }
  /** After the restore, at the first record: stream time, sequence and oldest buffered time. */
  private load(buffer: KeyValueStore<Buffer, Buffer>): void {
    this.loaded = true;
    const st = buffer.get(GRACE_STREAM_TIME);
    if (st !== undefined) this.observed = readInt64(st, 0);
    const seq = buffer.get(GRACE_SEQ);
    if (seq !== undefined) this.seq = readInt64(seq, 0);
    for (const kv of buffer.range(GRACE_FROM, GRACE_TO)) {
      this.minBuffered = readInt64(kv.key, 1);
      break;
    }
  }
  private evict(buffer: KeyValueStore<Buffer, Buffer>, horizon: number): void {
    const grace = this.grace!;
    const done: Buffer[] = [];
    this.minBuffered = Number.POSITIVE_INFINITY;
    for (const kv of buffer.range(GRACE_FROM, GRACE_TO)) {
      const ts = readInt64(kv.key, 1);
      if (ts > horizon) {
        this.minBuffered = ts;
        break;
      }
      done.push(kv.key);
      const kl = kv.value.readUInt32BE(0);
      const vl = kv.value.readUInt32BE(4);
      const key = grace.keySerde.deserialize(kv.value.subarray(8, 8 + kl));
      const value = grace.valueSerde.deserialize(kv.value.subarray(8 + kl, 8 + kl + vl));
      this.join({ key, value, timestamp: ts, headers: decodeHeaders(kv.value.subarray(8 + kl + vl)) });
    }
    for (const k of done) buffer.delete(k);
  }
  private join(r: StreamRecord<K, V>): void {
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
    const tvt = this.get(r.key, r.timestamp);
    const tv = tvt === undefined ? undefined : tvt.value;
    if (tv === undefined || tv === null) {
      if (!this.left) return;
      this.ctx.forward({ key: r.key, value: this.joiner(r.value, null, r.key), timestamp: r.timestamp, headers: r.headers });
      return;
    }
    this.ctx.forward({ key: r.key, value: this.joiner(r.value, tv, r.key), timestamp: r.timestamp, headers: r.headers });
  }
}

function int64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  writeInt64(b, n, 0);
  return b;
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
