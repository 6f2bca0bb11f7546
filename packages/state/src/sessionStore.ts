import type { CacheFlushListener, FlushListenable, KeyValue, Serde, SessionStore, Windowed } from '@vltava/dsl';
import type { Segments } from './segments.js';
import type { StoreStack } from './storeStack.js';
import { decodeTs, encodeTs, TS_WIDTH } from './timeKey.js';

/**
 * The typed facade of a session store. Store key: `segment(8) + key + end(8) + start(8)`, segmented
 * by session end, so the sessions of a key are contiguous and ordered by end inside a segment.
 */
export class TypedSessionStore<K, V> implements SessionStore<K, V>, FlushListenable<Windowed<K>, V> {
  private readonly topic: string;
  private readonly segments: Segments;
  droppedExpired = 0;

  constructor(
    private readonly stack: StoreStack,
    private readonly keySerde: Serde<K>,
    private readonly valueSerde: Serde<V>,
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

  private storeKey(k: string, start: number, end: number): string {
    return this.segments.prefix(end) + k + encodeTs(end) + encodeTs(start);
  }

  private session(sk: string): Windowed<K> {
    const n = sk.length;
    const key = this.keySerde.deserialize(Buffer.from(sk.slice(TS_WIDTH, n - 2 * TS_WIDTH), 'latin1'), this.topic);
    return { key, window: { start: decodeTs(sk, n - TS_WIDTH), end: decodeTs(sk, n - 2 * TS_WIDTH) } };
  }

  put(session: Windowed<K>, value: V): void {
    const { start, end } = session.window;
    this.segments.observe(end);
    if (end < this.segments.minLive()) {
      this.droppedExpired++;
      return;
    }
    const v = value === undefined || value === null ? null : this.valueSerde.serialize(value, this.topic);
    this.stack.top.put(this.storeKey(this.k(session.key), start, end), v, this.now());
  }

  remove(session: Windowed<K>): void {
    const { start, end } = session.window;
    if (end < this.segments.minLive()) return;
    this.stack.top.put(this.storeKey(this.k(session.key), start, end), null, this.now());
  }

  fetchSession(key: K, sessionStart: number, sessionEnd: number): V | undefined {
    if (sessionEnd < this.segments.minLive()) return undefined;
    const b = this.stack.top.get(this.storeKey(this.k(key), sessionStart, sessionEnd));
    return b === undefined ? undefined : this.valueSerde.deserialize(b, this.topic);
  }

  *findSessions(key: K, earliestSessionEnd: number, latestSessionStart: number): Generator<KeyValue<Windowed<K>, V>, void, undefined> {
    const seg = this.segments;
    const lo = Math.max(earliestSessionEnd, seg.minLive());
    if (lo > seg.streamTime) return;
    const k = this.k(key);
    const len = TS_WIDTH + k.length + 2 * TS_WIDTH;
    for (let s = seg.segmentOf(lo); s <= seg.segmentOf(seg.streamTime); s++) {
      const p = encodeTs(s) + k;
      for (const [sk, v] of this.stack.top.range(p + encodeTs(lo))) {
        if (!sk.startsWith(p)) break;
        if (sk.length !== len) continue;
        if (decodeTs(sk, len - TS_WIDTH) > latestSessionStart) continue;
        yield { key: this.session(sk), value: this.valueSerde.deserialize(v, this.topic) };
      }
    }
  }

  setFlushListener(listener: CacheFlushListener<Windowed<K>, V> | undefined): boolean {
    const cache = this.stack.cache;
    if (cache === undefined) return false;
    cache.listener =
      listener === undefined
        ? undefined
        : (sk, nv, ov, ts) =>
            listener(
              this.session(sk),
              nv === null ? undefined : this.valueSerde.deserialize(nv, this.topic),
              ov === null ? undefined : this.valueSerde.deserialize(ov, this.topic),
              ts,
            );
    return true;
  }
}
