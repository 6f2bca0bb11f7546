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
import type { FlushListenable, KeyValue, KeyValueStore, SessionStore, Windowed, WindowStore } from './stores.js';
import type { ValueAndTimestamp } from './timestamped.js';
import { StreamsError } from './errors.js';
import { BUFFER_ENTRY_OVERHEAD, type BufferConfig } from './timeLimitSuppress.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Ctx = ProcessorContext<any, any>;

export const LATE_RECORD = 'late record (window closed)';

/** Count, reduce or aggregate over TimeWindows (tumbling or hopping). */
export class TimeWindowAggregateProcessor<K, V, VA> implements Processor<K, V, Windowed<K>, Change<VA>> {
  private ctx!: Ctx;
  private store!: WindowStore<K, ValueAndTimestamp<VA>>;
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
    this.store = context.getStateStore<WindowStore<K, ValueAndTimestamp<VA>>>(this.storeName);
    this.cached = emitOnFlush(context, this.store, true);
  }
  process(r: StreamRecord<K, V>): void {
    if (r.key === null || r.key === undefined || r.value === null || r.value === undefined) {
      this.ctx.recordDropped(r.key == null ? 'null key in windowed aggregation' : 'null value in windowed aggregation');
      return;
    }
    const ts = r.timestamp;
    // After a restart or a move, the first record starts from the task's stream time as of the last
    // commit (kept with the committed offsets), not from nothing: late stays late across restarts.
    if (this.observed < 0) this.observed = this.ctx.currentStreamTimeMs();
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
      // The window's timestamp is the largest timestamp of its records (KStreamWindowAggregate).
      let wts = ts;
      if (old === undefined) agg = this.initializer === undefined ? (r.value as unknown as VA) : this.aggregator(r.key, r.value, this.initializer());
      else {
        agg = this.aggregator(r.key, r.value, old.value);
        if (old.timestamp > wts) wts = old.timestamp;
      }
      this.store.put(r.key, { value: agg, timestamp: wts }, start);
      if (this.cached) continue;
      const change: Change<VA> = { newValue: agg, oldValue: old === undefined ? null : old.value };
      this.ctx.forward({ key: { key: r.key, window: { start, end } }, value: change, timestamp: wts, headers: r.headers });
    }
  }
}

/**
 * Count, reduce or aggregate over SessionWindows, merging sessions a record bridges
 * (KStreamSessionWindowAggregate). A session's updates carry its end as timestamp, and the
 * tombstone of a session merged away carries that session's end. A record is late when its merged
 * session ends before stream time - grace - inactivity gap.
 */
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
    const s = this.store as unknown as Partial<FlushListenable<Windowed<K>, VA>>;
    // The cache flushes a session's latest value: stamp it with the session's end.
    this.cached =
      typeof s.setFlushListener === 'function' &&
      s.setFlushListener((key, newValue, oldValue) => {
        if (newValue === undefined && oldValue === undefined) return;
        const change: Change<VA> = { newValue: newValue === undefined ? null : newValue, oldValue: oldValue === undefined ? null : oldValue };
        context.forward({ key, value: change, timestamp: key.window.end, headers: undefined });
      });
  }
  process(r: StreamRecord<K, V>): void {
    if (r.key === null || r.key === undefined || r.value === null || r.value === undefined) {
      this.ctx.recordDropped(r.key == null ? 'null key in session aggregation' : 'null value in session aggregation');
      return;
    }
    const ts = r.timestamp;
    // After a restart or a move, the first record starts from the task's stream time as of the last
    // commit (kept with the committed offsets), not from nothing: late stays late across restarts.
    if (this.observed < 0) this.observed = this.ctx.currentStreamTimeMs();
    if (ts > this.observed) this.observed = ts;
    const closeTime = this.observed - this.graceMs - this.gapMs;
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
        if (!this.cached) this.ctx.forward({ key: s.key, value: { newValue: null, oldValue: s.value }, timestamp: s.key.window.end, headers: r.headers });
      }
    }
    agg = agg === undefined ? (r.value as unknown as VA) : this.aggregator(r.key, r.value, agg);
    const session: Windowed<K> = { key: r.key, window: { start, end } };
    this.store.put(session, agg);
    if (!this.cached) this.ctx.forward({ key: session, value: { newValue: agg, oldValue: null }, timestamp: end, headers: r.headers });
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
 * "Emitted" markers are stored under window end `end - MARKER_OFFSET` (negative), so in byte order
 * (two's complement, big-endian) they sort after every buffered window and the stream-time entry,
 * all with the first byte 0xff, oldest first.
 */
const MARKER_OFFSET = 2 ** 53;
const MARKER_PREFIX: Serde<null> = { name: 'suppress-marker-prefix', serialize: () => Buffer.from([0xff]), deserialize: () => null };

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
 * `suppress(untilWindowCloses)` (KTableSuppressProcessor with a final-results buffer): keeps the
 * latest update of each window in a change-logged buffer and emits it once stream time reaches
 * the window's end + grace (+ gap for sessions); with `strict`, once stream time passes it (the
 * emit time of emitStrategy 'on-window-close' for windows whose end is inclusive: sliding and
 * session windows). A tombstone (a session merged away) removes the buffered entry.
 *
 * What was emitted is recorded (a marker per emitted window, kept for `markerRetentionMs` of
 * stream time after the window closed): an update for a window already emitted (after a restart,
 * the aggregation's stream time starts over) is dropped as late, while the first update of a
 * window that reaches the buffer after stream time closed it (the record cache flushes keys in
 * its own order) is emitted at once, as Kafka Streams does.
 */
export class SuppressProcessor<K, V> implements Processor<Windowed<K>, Change<V>, Windowed<K>, Change<V>> {
  private static readonly OBSERVED: Windowed<never> = { key: null as never, window: { start: OBSERVED_END, end: OBSERVED_END } };
  private ctx!: Ctx;
  private store!: KeyValueStore<Windowed<K>, Buffered<V>>;
  private observed = -1;
  /** Smallest buffered window end; -Infinity: unknown (scan on the next record). */
  private minEnd = Number.NEGATIVE_INFINITY;
  /** Smallest marker's window end; -Infinity: unknown. */
  private minMarker = Number.NEGATIVE_INFINITY;
  constructor(
    private readonly storeName: string,
    private readonly closeAfterMs: number,
    private readonly strict: boolean,
    private readonly markerRetentionMs: number,
    /** A bounded buffer (`shutDownWhenFull` only: emitting early would not be final), with the store's serdes to count bytes. */
    private readonly limit?: { readonly buffer: BufferConfig; readonly keySerde: Serde<Windowed<K>>; readonly valueSerde: Serde<Buffered<V>> },
  ) {}
  private count = 0;
  private bytes = 0;
  init(context: Ctx): void {
    this.ctx = context;
    this.store = context.getStateStore<KeyValueStore<Windowed<K>, Buffered<V>>>(this.storeName);
  }
  private size(k: Windowed<K>, v: Buffered<V>): number {
    const l = this.limit!;
    if (l.buffer.maxBytes === Number.POSITIVE_INFINITY) return 0;
    return l.keySerde.serialize(k).length + l.valueSerde.serialize(v).length + BUFFER_ENTRY_OVERHEAD;
  }
  private static isWindow(w: Windowed<unknown>): boolean {
    return w.window.end !== OBSERVED_END && w.window.end > -MARKER_OFFSET / 2;
  }
  /**
   * The stream time is read at the first record, not in init: the runtime initializes processors
   * before it restores their stores.
   */
  private loaded = false;
  /** The largest window end that is closed at the current stream time. */
  private closedUpTo(): number {
    const t = this.observed - this.closeAfterMs;
    return this.strict ? t - 1 : t;
  }
  process(r: StreamRecord<Windowed<K>, Change<V>>): void {
    if (!this.loaded) {
      this.loaded = true;
      this.observed = this.store.get(SuppressProcessor.OBSERVED as Windowed<K>)?.timestamp ?? -1;
      if (this.limit !== undefined) {
        for (const kv of this.store.all()) {
          if (!SuppressProcessor.isWindow(kv.key)) continue;
          this.count++;
          this.bytes += this.size(kv.key, kv.value);
        }
      }
    }
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
      const old = this.store.delete(r.key);
      if (this.limit !== undefined && old !== undefined) {
        this.count--;
        this.bytes -= this.size(r.key, old);
      }
    } else {
      const end = r.key.window.end;
      if (end <= this.closedUpTo() && this.store.get(markerKey(r.key)) !== undefined) {
        this.ctx.recordDropped(LATE_RECORD); // its final result was emitted already
        return;
      }
      const buffered = { timestamp: r.timestamp, value: nv };
      if (this.limit !== undefined) {
        const old = this.store.get(r.key);
        if (old === undefined) this.count++;
        else this.bytes -= this.size(r.key, old);
        this.bytes += this.size(r.key, buffered);
      }
      this.store.put(r.key, buffered);
      if (end < this.minEnd) this.minEnd = end;
    }
    this.evict();
    const l = this.limit;
    if (l !== undefined && (this.count > l.buffer.maxRecords || this.bytes > l.buffer.maxBytes)) {
      throw new StreamsError(
        `suppress "${this.storeName}" in task ${this.ctx.taskId}: its buffer is over its maximum (${this.count}/${l.buffer.maxRecords} windows, ` +
          `${this.bytes}/${l.buffer.maxBytes} bytes) and untilWindowCloses shuts down when full. Raise maxRecords/maxBytes (or shorten the grace), then restart: the buffer is intact.`,
        { taskId: this.ctx.taskId },
      );
    }
  }
  private evict(): void {
    const closed = this.closedUpTo();
    if (this.minEnd <= closed) {
      const emitted: KeyValue<Windowed<K>, Buffered<V>>[] = [];
      let next = Number.POSITIVE_INFINITY;
      for (const kv of this.store.all()) {
        if (kv.key.window.end > closed) {
          next = kv.key.window.end;
          break;
        }
        emitted.push(kv);
        this.ctx.forward({ key: kv.key, value: { newValue: kv.value.value, oldValue: null }, timestamp: kv.value.timestamp, headers: undefined });
      }
      for (const kv of emitted) {
        if (this.limit !== undefined) {
          this.count--;
          this.bytes -= this.size(kv.key, kv.value);
        }
        this.store.delete(kv.key);
        this.store.put(markerKey(kv.key), { timestamp: kv.value.timestamp, value: undefined as V });
        if (kv.key.window.end < this.minMarker) this.minMarker = kv.key.window.end;
      }
      this.minEnd = next;
    }
    this.purgeMarkers(closed - this.markerRetentionMs);
  }
  /** Deletes the markers of windows that ended before `before`. */
  private purgeMarkers(before: number): void {
    if (this.minMarker >= before) return;
    const expired: Windowed<K>[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const kv of this.store.prefixScan(null, MARKER_PREFIX)) {
      const end = kv.key.window.end + MARKER_OFFSET;
      if (end >= before) {
        next = end;
        break;
      }
      expired.push(kv.key);
    }
    for (const k of expired) this.store.delete(k);
    this.minMarker = next;
  }
}

function markerKey<K>(w: Windowed<K>): Windowed<K> {
  return { key: w.key, window: { start: w.window.start, end: w.window.end - MARKER_OFFSET } };
}

/**
 * Count, reduce or aggregate over SlidingWindows, incrementally, as Kafka Streams'
 * KStreamSlidingWindowAggregate: the windows of a key are, for each record r, its left window
 * `[r - d, r]` (`[0, d]` for records earlier than d) and, when a later record lies within
 * `(r, r + 1 + d]`, its right window `[r + 1, r + 1 + d]`. Each stored window keeps its aggregate
 * and the largest timestamp of its records; a new window starts from the aggregate of an existing
 * one (so no record buffer is needed and windows already closed are never re-folded). Window ends
 * are inclusive: a window is updated while end >= stream time - grace.
 */
export class SlidingWindowAggregateProcessor<K, V, VA> implements Processor<K, V, Windowed<K>, Change<VA>> {
  private ctx!: Ctx;
  private store!: WindowStore<K, ValueAndTimestamp<VA>>;
  private cached = false;
  private observed = -1;
  constructor(
    private readonly storeName: string,
    private readonly d: number,
    private readonly graceMs: number,
    private readonly initializer: (() => VA) | undefined,
    private readonly aggregator: (key: K, value: V, aggregate: VA) => VA,
  ) {}
  init(context: Ctx): void {
    this.ctx = context;
    this.store = context.getStateStore<WindowStore<K, ValueAndTimestamp<VA>>>(this.storeName);
    this.cached = emitOnFlush(context, this.store, true);
  }
  process(r: StreamRecord<K, V>): void {
    if (r.key === null || r.key === undefined || r.value === null || r.value === undefined) {
      this.ctx.recordDropped(r.key == null ? 'null key in windowed aggregation' : 'null value in windowed aggregation');
      return;
    }
    const d = this.d;
    const ts = r.timestamp;
    // After a restart or a move, the first record starts from the task's stream time as of the last
    // commit (kept with the committed offsets), not from nothing: late stays late across restarts.
    if (this.observed < 0) this.observed = this.ctx.currentStreamTimeMs();
    if (ts > this.observed) this.observed = ts;
    const closeTime = this.observed - this.graceMs;
    if (ts + 1 + d <= closeTime) {
      // Even its right window is closed.
      this.ctx.recordDropped(LATE_RECORD);
      return;
    }
    if (ts < d) this.processEarly(r, closeTime);
    else this.processLatestFirst(r, closeTime);
  }

  private processLatestFirst(r: StreamRecord<K, V>, closeTime: number): void {
    const d = this.d;
    const ts = r.timestamp;
    const key = r.key;
    let leftAgg: ValueAndTimestamp<VA> | undefined;
    let rightAgg: ValueAndTimestamp<VA> | undefined;
    let leftExists = false;
    let rightExists = false;
    let prevTs = -1; // the latest record before ts, when known (-1: none)
    let prevRightExists = false;
    const windows = [...this.store.fetchRange(key, Math.max(0, ts - 2 * d), ts + 1)];
    // Latest window first, as Kafka Streams' processReverse.
    for (let i = windows.length - 1; i >= 0; i--) {
      const w = windows[i]!;
      const start = w.key;
      const end = start + d;
      const maxTs = w.value.timestamp;
      if (start === ts + 1) {
        rightExists = true;
      } else if (end > ts) {
        if (rightAgg === undefined) rightAgg = w.value;
        this.update(r, start, w.value, false, closeTime);
      } else if (end === ts) {
        leftExists = true;
        this.update(r, start, w.value, false, closeTime);
        // A record at ts was seen before: its windows exist already.
        if (maxTs >= ts) return;
        prevTs = maxTs;
      } else {
        leftAgg = w.value;
        prevTs = maxTs;
        break;
      }
    }
    if (prevTs >= 0) for (const w of windows) if (w.key === prevTs + 1) prevRightExists = true;
    // The previous record's right window, if it is missing and this record falls in it.
    if (prevTs >= 0 && !prevRightExists && prevTs + 1 + d >= ts) this.update(r, prevTs + 1, undefined, true, closeTime);
    // This record's left window: the records of the window ending before it that are within d, plus this one.
    if (!leftExists) {
      const seed = prevTs >= 0 && ts - d <= prevTs && leftAgg !== undefined ? { value: leftAgg.value, timestamp: ts } : undefined;
      this.update(r, ts - d, seed, true, closeTime);
    }
    // This record's right window, if later records exist within d: their aggregate, without this record.
    if (!rightExists && rightAgg !== undefined && rightAgg.timestamp > ts) this.createRight(r, rightAgg);
  }

  /** A record earlier than d: all such records share the window [0, d]. */
  private processEarly(r: StreamRecord<K, V>, closeTime: number): void {
    const ts = r.timestamp;
    let combined: ValueAndTimestamp<VA> | undefined;
    let rightAgg: ValueAndTimestamp<VA> | undefined;
    let rightExists = false;
    let prevTs = -1;
    let prevRightExists = false;
    const windows = [...this.store.fetchRange(r.key, 0, ts + 1)];
    for (const w of windows) {
      const start = w.key;
      if (start === 0) {
        combined = w.value;
        if (w.value.timestamp < ts) prevTs = w.value.timestamp;
      } else if (start <= ts) {
        rightAgg = w.value;
        this.update(r, start, w.value, false, closeTime);
      } else if (start === ts + 1) {
        rightExists = true;
      }
    }
    if (prevTs >= 0) for (const w of windows) if (w.key === prevTs + 1) prevRightExists = true;
    // Without another right window, [0, d] holds only records later than ts if its max is later.
    if (rightAgg === undefined && combined !== undefined && combined.timestamp > ts) rightAgg = combined;
    if (!rightExists && rightAgg !== undefined && rightAgg.timestamp > ts) this.createRight(r, rightAgg);
    if (prevTs >= 0 && !prevRightExists) this.update(r, prevTs + 1, undefined, true, closeTime);
    this.update(r, 0, combined, combined === undefined, closeTime);
  }

  private createRight(r: StreamRecord<K, V>, agg: ValueAndTimestamp<VA>): void {
    const start = r.timestamp + 1;
    this.store.put(r.key, agg, start);
    if (this.cached) return;
    this.ctx.forward({ key: { key: r.key, window: { start, end: start + this.d } }, value: { newValue: agg.value, oldValue: null }, timestamp: agg.timestamp, headers: r.headers });
  }

  /** Adds the record to the window at `start` (from `seed`: its stored value, or the aggregate it starts from) if still open. */
  private update(r: StreamRecord<K, V>, start: number, seed: ValueAndTimestamp<VA> | undefined, created: boolean, closeTime: number): void {
    const end = start + this.d;
    if (end < closeTime) {
      this.ctx.recordDropped(LATE_RECORD);
      return;
    }
    const key = r.key;
    const agg =
      seed === undefined
        ? this.initializer === undefined
          ? (r.value as unknown as VA)
          : this.aggregator(key, r.value, this.initializer())
        : this.aggregator(key, r.value, seed.value);
    const ts = seed !== undefined && seed.timestamp > r.timestamp ? seed.timestamp : r.timestamp;
    this.store.put(key, { value: agg, timestamp: ts }, start);
    if (this.cached) return;
    this.ctx.forward({ key: { key, window: { start, end } }, value: { newValue: agg, oldValue: created || seed === undefined ? null : seed.value }, timestamp: ts, headers: r.headers });
  }
}
