/**
 * The typed state store interfaces and the store specification that a Topology declares.
 *
 * These are shared types: `@vltava/dsl` uses them in operators and the processor API,
 * `@vltava/state` implements them (typed facade -> change-logging -> overlay -> bytes store),
 * and the task executor opens them through `@vltava/state`.
 *
 * Every method here is synchronous: the per-record path never awaits.
 */
import type { Serde } from './serde.js';

export interface KeyValue<K, V> {
  readonly key: K;
  readonly value: V;
}

/** A time window: `start` inclusive, `end` exclusive, both in epoch milliseconds. */
export interface TimeWindow {
  readonly start: number;
  readonly end: number;
}

/** A key of a windowed store or a windowed KTable. */
export interface Windowed<K> {
  readonly key: K;
  readonly window: TimeWindow;
}

export interface StateStore {
  readonly name: string;
}

export interface ReadOnlyKeyValueStore<K, V> extends StateStore {
  get(key: K): V | undefined;
  /** Entries with from <= key <= to in byte order of the serialized key; either bound may be omitted. */
  range(from?: K, to?: K): Iterable<KeyValue<K, V>>;
  all(): Iterable<KeyValue<K, V>>;
  /** Entries whose serialized key starts with the serialized prefix. */
  prefixScan<P>(prefix: P, prefixSerde: Serde<P>): Iterable<KeyValue<K, V>>;
  approximateNumEntries(): number;
}

export interface KeyValueStore<K, V> extends ReadOnlyKeyValueStore<K, V> {
  put(key: K, value: V): void;
  /** Puts only if the key is absent; returns the existing value, or undefined if it put. */
  putIfAbsent(key: K, value: V): V | undefined;
  putAll(entries: Iterable<KeyValue<K, V>>): void;
  /** Deletes the key; returns the old value. */
  delete(key: K): V | undefined;
}

export interface ReadOnlyWindowStore<K, V> extends StateStore {
  fetch(key: K, windowStart: number): V | undefined;
  /** The windows of one key whose start lies in [timeFrom, timeTo], in ascending start order. */
  fetchRange(key: K, timeFrom: number, timeTo: number): Iterable<KeyValue<number, V>>;
  /** All windows of all keys whose start lies in [timeFrom, timeTo]. */
  fetchAll(timeFrom: number, timeTo: number): Iterable<KeyValue<Windowed<K>, V>>;
  all(): Iterable<KeyValue<Windowed<K>, V>>;
}

export interface WindowStore<K, V> extends ReadOnlyWindowStore<K, V> {
  /** Puts the value of the window of `key` starting at `windowStart`; `undefined` deletes it. */
  put(key: K, value: V | undefined, windowStart: number): void;
}

export interface ReadOnlySessionStore<K, V> extends StateStore {
  /** Sessions of `key` with end >= earliestSessionEnd and start <= latestSessionStart. */
  findSessions(key: K, earliestSessionEnd: number, latestSessionStart: number): Iterable<KeyValue<Windowed<K>, V>>;
  fetchSession(key: K, sessionStart: number, sessionEnd: number): V | undefined;
}

export interface SessionStore<K, V> extends ReadOnlySessionStore<K, V> {
  put(session: Windowed<K>, value: V): void;
  remove(session: Windowed<K>): void;
}

/**
 * Called when the record cache flushes a key (before a commit, or early when the cache is full):
 * once per key updated since the last flush, with its latest value and its value before those
 * updates (`undefined`: absent or deleted). Implemented by the stores of `@vltava/state`.
 */
export type CacheFlushListener<K, V> = (key: K, newValue: V | undefined, oldValue: V | undefined, timestamp: number) => void;

/** A store whose record cache can report flushed updates (for one downstream update per key). */
export interface FlushListenable<K, V> {
  /**
   * Registers the listener. Returns false if the store has no cache (caching off): the caller
   * must then forward each update itself.
   */
  setFlushListener(listener: CacheFlushListener<K, V> | undefined): boolean;
}

export type StoreKind = 'keyValue' | 'window' | 'session';

/**
 * What a Topology declares about a store. The executor hands these to `@vltava/state` to open
 * the store stack of each task.
 */
export interface StoreSpec<K = unknown, V = unknown> {
  readonly name: string;
  readonly kind: StoreKind;
  readonly keySerde: Serde<K>;
  readonly valueSerde: Serde<V>;
  /** Whether writes are change-logged to `<appId>-<name>-changelog` (default true). */
  readonly logging: boolean;
  /** Whether the record cache collapses repeated updates between commits (default true). */
  readonly caching: boolean;
  /** window and session stores: how long data is kept, in ms of stream time. */
  readonly retentionMs?: number;
  /** window stores: the window size in ms. */
  readonly windowSizeMs?: number;
  /**
   * keyValue stores: whether range(), all() and prefixScan() are used (default true). false skips the
   * in-memory key index, so opening the store costs nothing per key; range calls then throw.
   */
  readonly rangeScans?: boolean;
  /** Extra topic configs for the changelog topic. */
  readonly changelogConfig?: Readonly<Record<string, string>>;
  /**
   * The values are `ValueAndTimestamp` (the result and its timestamp, as Kafka Streams'
   * timestamped stores): set by the DSL's table-producing operators. The test driver's store
   * getters show such a store's plain values.
   */
  readonly timestamped?: boolean;
  /**
   * keyValue stores of versioned tables (KIP-889): the values are `Versions<V>` (each key's history)
   * kept for this long in stream time. The test driver's getVersionedKeyValueStore reads them.
   */
  readonly versionedHistoryRetentionMs?: number;
}
