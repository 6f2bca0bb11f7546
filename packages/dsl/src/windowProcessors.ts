/**
 * The processors behind windowed aggregations and `suppress(untilWindowCloses)`. Each follows the
 * Kafka Streams processor of the same role (KStreamWindowAggregate, KStreamSessionWindowAggregate,
 * KTableSuppressProcessor): an operator's stream time is the largest timestamp it has seen, a
 * window closes when stream time reaches its end + grace, and updates to closed windows are
 * dropped as late (counted in the task's dropped-records metric with reason "late record").
 */
import { emitOnFlush } from './builtinProcessors.js';
import type { Change, Processor, ProcessorContext, StreamRecord } from './processor.js';
import type { Serde } from './serde.js';
import { readInt64, writeInt64 } from './serdes.js';
import type { KeyValueStore, SessionStore, Windowed, WindowStore } from './stores.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Ctx = ProcessorContext<any, any>;

export const LATE_RECORD = 'late record (window closed)';

/** Count, reduce or aggregate over TimeWindows (tumbling or hopping). */
export class TimeWindowAggregateProcessor<K, V, VA> implements Processor<K, V, Windowed<K>, Change<VA>> {
  private ctx!: Ctx;
  private store!: WindowStore<K, VA>;
  private cached = false;
  private observed = -1;
  constructor(
    private readonly storeName: string,
    private readonly sizeMs: number,
    private readonly advanceMs: number,
    private readonly graceMs: number,
    private readonly initializer: (() => VA) | undefined,
    private readonly aggregator: (key: K, value: V, aggregate: VA) => VA,
  ) {}
  init(context: Ctx): void {
    this.ctx = context;
    this.store = context.getStateStore<WindowStore<K, VA>>(this.storeName);
    this.cached = emitOnFlush(context, this.store);
  }
  process(r: StreamRecord<K, V>): void {
    if (r.key === null || r.key === undefined || r.value === null || r.value === undefined) {
      this.ctx.recordDropped(r.key == null ? 'null key in windowed aggregation' : 'null value in windowed aggregation');
      return;
    }
    const ts = r.timestamp;
    if (ts > this.observed) this.observed = ts;
    const closeTime = this.observed - this.graceMs;
    const size = this.sizeMs;
    const advance = this.advanceMs;
    let start = Math.max(0, ts - size + advance);
    start -= start % advance;
    for (; start <= ts; start += advance) {
      const end = start + size;
      if (end <= closeTime) {
        this.ctx.recordDropped(LATE_RECORD);
        continue;
      }
      const old = this.store.fetch(r.key, start);
      let agg: VA;
      if (old === undefined) agg = this.initializer === undefined ? (r.value as unknown as VA) : this.aggregator(r.key, r.value, this.initializer());
      else agg = this.aggregator(r.key, r.value, old);
      this.store.put(r.key, agg, start);
      if (this.cached) continue;
      const change: Change<VA> = { newValue: agg, oldValue: old === undefined ? null : old };
      this.ctx.forward({ key: { key: r.key, window: { start, end } }, value: change, timestamp: ts, headers: r.headers });
    }
  }
}

/** Count, reduce or aggregate over SessionWindows, merging sessions a record bridges. */
export class SessionWindowAggregateProcessor<K, V, VA> implements Processor<K, V, Windowed<K>, Change<VA>> {
  private ctx!: Ctx;
  private store!: SessionStore<K, VA>;
  private cached = false;
  private observed = -1;
  constructor(
    private readonly storeName: string,
    private readonly gapMs: number,
    private readonly graceMs: number,
    private readonly initializer: (() => VA) | undefined,
    private readonly aggregator: (key: K, value: V, aggregate: VA) => VA,
    private readonly merger: (key: K, a: VA, b: VA) => VA,
  ) {}
  init(context: Ctx): void {
    this.ctx = context;
    this.store = context.getStateStore<SessionStore<K, VA>>(this.storeName);
    this.cached = emitOnFlush(context, this.store);
  }
  process(r: StreamRecord<K, V>): void {
    if (r.key === null || r.key === undefined || r.value === null || r.value === undefined) {
      this.ctx.recordDropped(r.key == null ? 'null key in session aggregation' : 'null value in session aggregation');
      return;
    }
    const ts = r.timestamp;
    if (ts > this.observed) this.observed = ts;
    const closeTime = this.observed - this.graceMs;
    let start = ts;
    let end = ts;
    let agg: VA | undefined = this.initializer?.();
    const merged = [...this.store.findSessions(r.key, ts - this.gapMs, ts + this.gapMs)];
    for (const s of merged) {
      agg = agg === undefined ? s.value : this.merger(r.key, agg, s.value);
      if (s.key.window.start < start) start = s.key.window.start;
      if (s.key.window.end > end) end = s.key.window.end;
    }
    if (end < closeTime) {
      this.ctx.recordDropped(LATE_RECORD);
      return;
    }
    if (start !== ts || end !== ts) {
      for (const s of merged) {
        this.store.remove(s.key);
        if (!this.cached) this.ctx.forward({ key: s.key, value: { newValue: null, oldValue: s.value }, timestamp: ts, headers: r.headers });
      }
    }
    agg = agg === undefined ? (r.value as unknown as VA) : this.aggregator(r.key, r.value, agg);
    const session: Windowed<K> = { key: r.key, window: { start, end } };
    this.store.put(session, agg);
    if (!this.cached) this.ctx.forward({ key: session, value: { newValue: agg, oldValue: null }, timestamp: ts, headers: r.headers });
  }
}

/** A buffered final result: the update's timestamp and value. */
export interface Buffered<V> {
  readonly timestamp: number;
  readonly value: V;
}

/** The buffer entry holding the suppress operator's stream time: sorts after every window, never emitted. */
const OBSERVED_END = Number.MAX_SAFE_INTEGER;

/**
 * Suppress buffer keys: window end, window start, then the key bytes, so a scan meets windows in
 * closing order. The reserved key (end = MAX_SAFE_INTEGER, no key bytes) holds the stream time.
 */
export function bufferKeySerde<K>(inner: Serde<K>): Serde<Windowed<K>> {
  return {
    name: `suppress-key<${inner.name}>`,
    serialize(w, topic) {
      const k = w.window.end === OBSERVED_END ? Buffer.alloc(0) : inner.serialize(w.key, topic);
      const buf = Buffer.allocUnsafe(16 + k.length);
      writeInt64(buf, w.window.end, 0);
      writeInt64(buf, w.window.start, 8);
      k.copy(buf, 16);
      return buf;
    },
    deserialize(data, topic) {
      const end = readInt64(data, 0);
      const key = end === OBSERVED_END ? (null as K) : inner.deserialize(data.subarray(16), topic);
      return { key, window: { start: readInt64(data, 8), end } };
    },
  };
}

export function bufferValueSerde<V>(inner: Serde<V>): Serde<Buffered<V>> {
  return {
    name: `suppress-value<${inner.name}>`,
    serialize(b, topic) {
      const v = b.value === undefined ? undefined : inner.serialize(b.value, topic);
      const buf = Buffer.allocUnsafe(9 + (v?.length ?? 0));
      writeInt64(buf, b.timestamp, 0);
      buf[8] = v === undefined ? 0 : 1;
      v?.copy(buf, 9);
      return buf;
    },
    deserialize(data, topic) {
      return { timestamp: readInt64(data, 0), value: data[8] === 1 ? inner.deserialize(data.subarray(9), topic) : (undefined as V) };
    },
  };
}

/**
 * `suppress(untilWindowCloses)`: keeps the latest update of each window in a change-logged
 * buffer and emits it once stream time reaches the window's end + grace (+ gap for sessions).
 * A tombstone (a session merged away) removes the buffered entry: nothing was emitted for it.
 * The operator's stream time is kept in the buffer too, so after a restart an update for a window
 * already emitted (a late record the restarted aggregation accepted) is dropped, not emitted twice.
 */
export class SuppressProcessor<K, V> implements Processor<Windowed<K>, Change<V>, Windowed<K>, Change<V>> {
  private static readonly OBSERVED: Windowed<never> = { key: null as never, window: { start: OBSERVED_END, end: OBSERVED_END } };
  private ctx!: Ctx;
  private store!: KeyValueStore<Windowed<K>, Buffered<V>>;
  private observed = -1;
  /** Smallest buffered window end; -Infinity: unknown (scan on the next record). */
  private minEnd = Number.NEGATIVE_INFINITY;
  constructor(
    private readonly storeName: string,
    private readonly closeAfterMs: number,
  ) {}
  init(context: Ctx): void {
    this.ctx = context;
    this.store = context.getStateStore<KeyValueStore<Windowed<K>, Buffered<V>>>(this.storeName);
    this.observed = this.store.get(SuppressProcessor.OBSERVED as Windowed<K>)?.timestamp ?? -1;
  }
  process(r: StreamRecord<Windowed<K>, Change<V>>): void {
    if (r.timestamp > this.observed) {
      this.observed = r.timestamp;
      this.store.put(SuppressProcessor.OBSERVED as Windowed<K>, { timestamp: r.timestamp, value: undefined as V });
    }
    if (r.key === null || r.key === undefined) {
      this.ctx.recordDropped('null key in suppress');
      return;
    }
    const nv = r.value.newValue;
    if (nv === null) {
      this.store.delete(r.key);
    } else if (r.key.window.end <= this.observed - this.closeAfterMs) {
      this.ctx.recordDropped(LATE_RECORD); // its final result was emitted already
      return;
    } else {
      this.store.put(r.key, { timestamp: r.timestamp, value: nv });
      if (r.key.window.end < this.minEnd) this.minEnd = r.key.window.end;
    }
    this.evict();
  }
  private evict(): void {
    const closeTime = this.observed - this.closeAfterMs;
    if (this.minEnd > closeTime) return;
    const emitted: Windowed<K>[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const kv of this.store.all()) {
      if (kv.key.window.end > closeTime) {
        next = kv.key.window.end;
        break;
      }
      emitted.push(kv.key);
      this.ctx.forward({ key: kv.key, value: { newValue: kv.value.value, oldValue: null }, timestamp: kv.value.timestamp, headers: undefined });
    }
    for (const k of emitted) this.store.delete(k);
    this.minEnd = next;
  }
}

/**
 * Count, reduce or aggregate over SlidingWindows. The windows of a key are those Kafka Streams
 * creates: for each record r, its left window `[r - d, r]` (`[0, d]` for records earlier than d)
 * and, when a later record lies within `(r, r + 1 + d]`, its right window `[r + 1, r + 1 + d]`.
 * Records are buffered in `<name>-records`; each window a record touches is re-folded from the
 * buffered records in timestamp order (so an aggregator must not depend on arrival order).
 */
export class SlidingWindowAggregateProcessor<K, V, VA> implements Processor<K, V, Windowed<K>, Change<VA>> {
  private ctx!: Ctx;
  private store!: WindowStore<K, VA>;
  private records!: WindowStore<K, V[]>;
  private cached = false;
  private observed = -1;
  constructor(
    private readonly storeName: string,
    private readonly recordsStoreName: string,
    private readonly d: number,
    private readonly graceMs: number,
    private readonly initializer: (() => VA) | undefined,
    private readonly aggregator: (key: K, value: V, aggregate: VA) => VA,
  ) {}
  init(context: Ctx): void {
    this.ctx = context;
    this.store = context.getStateStore<WindowStore<K, VA>>(this.storeName);
    this.records = context.getStateStore<WindowStore<K, V[]>>(this.recordsStoreName);
    this.cached = emitOnFlush(context, this.store);
  }
  process(r: StreamRecord<K, V>): void {
    if (r.key === null || r.key === undefined || r.value === null || r.value === undefined) {
      this.ctx.recordDropped(r.key == null ? 'null key in windowed aggregation' : 'null value in windowed aggregation');
      return;
    }
    const d = this.d;
    const ts = r.timestamp;
    if (ts > this.observed) this.observed = ts;
    const closeTime = this.observed - this.graceMs;
    if (ts + 1 + d <= closeTime) {
      this.ctx.recordDropped(LATE_RECORD);
      return;
    }
    const key = r.key;
    const prev = this.records.fetch(key, ts);
    this.records.put(key, prev === undefined ? [r.value] : [...prev, r.value], ts);
    // Record timestamps near ts (the buffer holds at least what open windows need).
    const near: number[] = [];
    for (const kv of this.records.fetchRange(key, Math.max(0, ts - d - 1), ts + d + 1)) near.push(kv.key);
    const starts = new Set<number>();
    for (const rt of near) {
      if (rt >= ts && rt <= ts + d) starts.add(Math.max(0, rt - d)); // left windows containing ts
      if (rt < ts && rt >= ts - d - 1) starts.add(rt + 1); // right windows of earlier records, now containing ts
      if (rt > ts) starts.add(ts + 1); // this record's right window, now non-empty
    }
    const sorted = [...starts].sort((a, b) => a - b);
    for (const s of sorted) {
      const end = s + d;
      if (end <= closeTime) {
        // Closed (as Kafka Streams, counted per window): only the windows still open change.
        this.ctx.recordDropped(LATE_RECORD);
        continue;
      }
      let agg: VA | undefined = this.initializer?.();
      for (const kv of this.records.fetchRange(key, s, end)) {
        for (const v of kv.value) agg = agg === undefined ? (v as unknown as VA) : this.aggregator(key, v, agg);
      }
      if (agg === undefined) continue;
      const old = this.store.fetch(key, s);
      this.store.put(key, agg, s);
      if (this.cached) continue;
      this.ctx.forward({ key: { key, window: { start: s, end } }, value: { newValue: agg, oldValue: old === undefined ? null : old }, timestamp: ts, headers: r.headers });
    }
  }
}
