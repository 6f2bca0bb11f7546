import type { CacheFlushListener, FlushListenable, KeyValue, Serde, Windowed, WindowStore } from '@vltava/dsl';
import type { Segments } from './segments.js';
import type { StoreStack } from './storeStack.js';
import { decodeTs, encodeTs, TS_WIDTH } from './timeKey.js';

/**
 * The typed facade of a window store. Store key: `segment(8) + key + windowStart(8)`, big-endian, so
 * the windows of one key are contiguous and ordered by start inside each segment.
 */
export class TypedWindowStore<K, V> implements WindowStore<K, V>, FlushListenable<Windowed<K>, V> {
  private readonly topic: string;
  private readonly segments: Segments;
  /** Puts dropped because their window had already expired. */
  droppedExpired = 0;

  constructor(
    private readonly stack: StoreStack,
    private readonly keySerde: Serde<K>,
    private readonly valueSerde: Serde<V>,
    private readonly windowSizeMs: number,
    private readonly now: () => number,
  ) {
    this.topic = stack.changelogTopic;
    this.segments = stack.segments as Segments;
  }

  get name(): string {
    return this.stack.name;
  }

  private k(key: K): string {
    return this.keySerde.serialize(key, this.topic).toString('latin1');
  }

  private storeKey(k: string, windowStart: number): string {
    return this.segments.prefix(windowStart) + k + encodeTs(windowStart);
  }

  private windowed(storeKey: string, start: number): Windowed<K> {
    const key = this.keySerde.deserialize(Buffer.from(storeKey.slice(TS_WIDTH, storeKey.length - TS_WIDTH), 'latin1'), this.topic);
    return { key, window: { start, end: start + this.windowSizeMs } };
  }

  put(key: K, value: V | undefined, windowStart: number): void {
    this.segments.observe(windowStart);
    if (windowStart < this.segments.minLive()) {
      this.droppedExpired++;
      return;
    }
    const v = value === undefined || value === null ? null : this.valueSerde.serialize(value, this.topic);
    this.stack.top.put(this.storeKey(this.k(key), windowStart), v, this.now());
  }

  fetch(key: K, windowStart: number): V | undefined {
    if (windowStart < this.segments.minLive()) return undefined;
    const b = this.stack.top.get(this.storeKey(this.k(key), windowStart));
    return b === undefined ? undefined : this.valueSerde.deserialize(b, this.topic);
  }

  *fetchRange(key: K, timeFrom: number, timeTo: number): Generator<KeyValue<number, V>, void, undefined> {
    const seg = this.segments;
    const lo = Math.max(timeFrom, seg.minLive());
    const hi = Math.min(timeTo, seg.streamTime);
    if (lo > hi) return;
    const k = this.k(key);
    const len = TS_WIDTH + k.length + TS_WIDTH;
    for (let s = seg.segmentOf(lo); s <= seg.segmentOf(hi); s++) {
      const p = encodeTs(s) + k;
      for (const [sk, v] of this.stack.top.range(p + encodeTs(lo), p + encodeTs(hi))) {
        if (sk.length !== len) continue;
        yield { key: decodeTs(sk, len - TS_WIDTH), value: this.valueSerde.deserialize(v, this.topic) };
      }
    }
  }

  *fetchAll(timeFrom: number, timeTo: number): Generator<KeyValue<Windowed<K>, V>, void, undefined> {
    const seg = this.segments;
    const lo = Math.max(timeFrom, seg.minLive());
    const hi = Math.min(timeTo, seg.streamTime);
    if (lo > hi) return;
    for (let s = seg.segmentOf(lo); s <= seg.segmentOf(hi); s++) {
      const p = encodeTs(s);
      for (const [sk, v] of this.stack.top.range(p)) {
        if (!sk.startsWith(p)) break;
        const start = decodeTs(sk, sk.length - TS_WIDTH);
        if (start < lo || start > hi) continue;
        yield { key: this.windowed(sk, start), value: this.valueSerde.deserialize(v, this.topic) };
      }
    }
  }

  all(): Generator<KeyValue<Windowed<K>, V>, void, undefined> {
    return this.fetchAll(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  }

  setFlushListener(listener: CacheFlushListener<Windowed<K>, V> | undefined): boolean {
    const cache = this.stack.cache;
    if (cache === undefined) return false;
    cache.listener =
      listener === undefined
        ? undefined
        : (sk, nv, ov, ts) =>
            listener(
              this.windowed(sk, decodeTs(sk, sk.length - TS_WIDTH)),
              nv === null ? undefined : this.valueSerde.deserialize(nv, this.topic),
              ov === null ? undefined : this.valueSerde.deserialize(ov, this.topic),
              ts,
            );
    return true;
  }
}
