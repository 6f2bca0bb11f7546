/**
 * Versioned key-value stores (KIP-889) and what reads them (KIP-914): a table whose store keeps,
 * per key, every value it had during the last `historyRetentionMs` of stream time, so a
 * stream-table join can read the row **as of the stream record's timestamp** instead of whatever
 * was processed last.
 *
 * Storage: one entry per key in a plain key-value store, holding the key's versions in timestamp
 * order (`versionedSerde`); a put rewrites the entry, so the changelog carries the key's history and
 * a restore needs nothing special. Versions that can no longer be read (they ended before stream
 * time - history retention) are dropped at the next put of the key; the latest version is always kept.
 */
import type { Change, Processor, ProcessorContext, StreamRecord } from './processor.js';
import type { Serde } from './serde.js';
import { readInt64, writeInt64 } from './serdes.js';
import type { KeyValueStore, StateStore } from './stores.js';
import type { ValueGetter } from './valueGetter.js';
import { TopologyError } from './errors.js';
import type { InternalBuilder } from './graph.js';
import { KTable } from './kTable.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

export interface VersionedTableOptions {
  /** How long (ms of stream time) older versions stay readable. Also the longest grace a join may use. */
  readonly historyRetentionMs: number;
}

/** A value with the time it became valid and, unless it is the latest, the time it stopped being. */
export interface VersionedRecord<V> {
  readonly value: V;
  readonly timestamp: number;
  readonly validTo?: number;
}

/** `'latest'`: the put is the key's newest version; `'history'`: an older one; `'not-put'`: older than the history retention. */
export type VersionedPutResult = 'latest' | 'history' | 'not-put';

export interface VersionedKeyValueStore<K, V> extends StateStore {
  /** Adds the version of `key` valid from `timestamp` (`null`: a tombstone from then on). */
  put(key: K, value: V | null, timestamp: number): VersionedPutResult;
  /** The latest version (undefined: none, or deleted). */
  get(key: K): VersionedRecord<V> | undefined;
  /** The version valid at `asOfTimestamp` (undefined: none, deleted then, or older than the history retention). */
  get(key: K, asOfTimestamp: number): VersionedRecord<V> | undefined;
  /** Puts a tombstone at `timestamp`; returns the version it ended, if any. */
  delete(key: K, timestamp: number): VersionedRecord<V> | undefined;
}

/** A key's versions, oldest first; `value` null is a tombstone. */
export type Versions<V> = readonly { readonly timestamp: number; readonly value: V | null }[];

export function versionedSerde<V>(inner: Serde<V>): Serde<Versions<V>> {
  return {
    name: `versioned<${inner.name}>`,
    serialize(versions, topic) {
      const parts = versions.map((v) => (v.value === null ? null : inner.serialize(v.value, topic)));
      let size = 4;
      for (const p of parts) size += 13 + (p?.length ?? 0);
      const buf = Buffer.allocUnsafe(size);
      buf.writeUInt32BE(versions.length, 0);
      let o = 4;
      versions.forEach((v, i) => {
        const p = parts[i] ?? null;
        writeInt64(buf, v.timestamp, o);
        buf[o + 8] = p === null ? 0 : 1;
        buf.writeUInt32BE(p?.length ?? 0, o + 9);
        o += 13;
        if (p !== null) {
          p.copy(buf, o);
          o += p.length;
        }
      });
      return buf;
    },
    deserialize(data, topic) {
      const n = data.readUInt32BE(0);
      const out: { timestamp: number; value: V | null }[] = [];
      let o = 4;
      for (let i = 0; i < n; i++) {
        const timestamp = readInt64(data, o);
        const present = data[o + 8] === 1;
        const len = data.readUInt32BE(o + 9);
        o += 13;
        out.push({ timestamp, value: present ? inner.deserialize(data.subarray(o, o + len), topic) : null });
        o += len;
      }
      return out;
    },
  };
}

/** The versioned view over the key-value store that holds the version lists. */
export class VersionedStoreFacade<K, V> implements VersionedKeyValueStore<K, V> {
  /** The greatest timestamp put (stream time of the store); starts over when the task restarts. */
  private observed = Number.NEGATIVE_INFINITY;
  constructor(
    private readonly inner: KeyValueStore<K, Versions<V>>,
    readonly historyRetentionMs: number,
  ) {}

  get name(): string {
    return this.inner.name;
  }

  put(key: K, value: V | null, timestamp: number): VersionedPutResult {
    if (timestamp < this.observed - this.historyRetentionMs) return 'not-put';
    if (timestamp > this.observed) this.observed = timestamp;
    const old = this.inner.get(key) ?? [];
    const horizon = this.observed - this.historyRetentionMs;
    const next: { timestamp: number; value: V | null }[] = [];
    let placed = false;
    for (let i = 0; i < old.length; i++) {
      const v = old[i]!;
      if (!placed && v.timestamp >= timestamp) {
        next.push({ timestamp, value });
        placed = true;
        if (v.timestamp === timestamp) continue; // replaced
      }
      next.push(v);
    }
    if (!placed) next.push({ timestamp, value });
    // drop versions that ended at or before the horizon (never readable again); keep the latest
    let drop = 0;
    while (drop < next.length - 1 && next[drop + 1]!.timestamp <= horizon) drop++;
    const kept = drop === 0 ? next : next.slice(drop);
    // a key whose only version is an expired tombstone is gone
    if (kept.length === 1 && kept[0]!.value === null && kept[0]!.timestamp <= horizon) this.inner.delete(key);
    else this.inner.put(key, kept);
    return next[next.length - 1]!.timestamp === timestamp ? 'latest' : 'history';
  }

  get(key: K, asOfTimestamp?: number): VersionedRecord<V> | undefined {
    const versions = this.inner.get(key);
    if (versions === undefined || versions.length === 0) return undefined;
    if (asOfTimestamp === undefined) {
      const last = versions[versions.length - 1]!;
      return last.value === null ? undefined : { value: last.value, timestamp: last.timestamp };
    }
    if (asOfTimestamp < this.observed - this.historyRetentionMs) return undefined;
    for (let i = versions.length - 1; i >= 0; i--) {
      const v = versions[i]!;
      if (v.timestamp <= asOfTimestamp) {
        if (v.value === null) return undefined;
        const validTo = versions[i + 1]?.timestamp;
        return validTo === undefined ? { value: v.value, timestamp: v.timestamp } : { value: v.value, timestamp: v.timestamp, validTo };
      }
    }
    return undefined;
  }

  delete(key: K, timestamp: number): VersionedRecord<V> | undefined {
    const before = this.get(key, timestamp);
    this.put(key, null, timestamp);
    return before;
  }
}

const facades = new WeakMap<object, VersionedStoreFacade<any, any>>();

/** The one facade of a task's store (its stream time is shared by the table and its readers). */
export function versionedFacade<K, V>(inner: KeyValueStore<K, Versions<V>>, historyRetentionMs: number): VersionedStoreFacade<K, V> {
  let f = facades.get(inner);
  if (f === undefined) {
    f = new VersionedStoreFacade(inner, historyRetentionMs);
    facades.set(inner, f);
  }
  return f;
}

/** The getter of a versioned table: latest rows for table-side reads, rows as of a time for stream-table joins. */
export function versionedGetter<K, V>(store: string, historyRetentionMs: number): ValueGetter<K, V> {
  const open = (ctx: ProcessorContext<any, any>) => versionedFacade<K, V>(ctx.getStateStore<KeyValueStore<K, Versions<V>>>(store), historyRetentionMs);
  return {
    stores: [store],
    historyRetentionMs,
    connect(ctx) {
      const s = open(ctx);
      return (key) => s.get(key);
    },
    connectVersioned(ctx) {
      const s = open(ctx);
      return (key, asOf) => s.get(key, asOf);
    },
  };
}

/**
 * `builder.table(topic, { versioned })`: every update becomes a version; only an update that is
 * the key's newest version is forwarded (an out-of-order update only changes the history, as in
 * Kafka Streams' KTableSource over a versioned store), and one older than the history retention
 * is dropped (counted as 'expired versioned update').
 */
export class VersionedTableSourceProcessor<K, V> implements Processor<K, V | null, K, Change<V>> {
  private ctx!: ProcessorContext<K, Change<V>>;
  private store!: VersionedStoreFacade<K, V>;
  constructor(
    private readonly storeName: string,
    private readonly historyRetentionMs: number,
  ) {}
  init(ctx: ProcessorContext<K, Change<V>>): void {
    this.ctx = ctx;
    this.store = versionedFacade(ctx.getStateStore<KeyValueStore<K, Versions<V>>>(this.storeName), this.historyRetentionMs);
  }
  process(r: StreamRecord<K, V | null>): void {
    if (r.key === null || r.key === undefined) {
      this.ctx.recordDropped('null key in table');
      return;
    }
    const old = this.store.get(r.key);
    const value = r.value ?? null;
    const result = this.store.put(r.key, value, r.timestamp);
    if (result === 'not-put') {
      this.ctx.recordDropped('expired versioned update');
      return;
    }
    if (result === 'history') return; // out of order: the history changed, the latest row did not
    if (value === null && old === undefined) return; // deleting an absent row changes nothing downstream
    this.ctx.forward({ key: r.key, value: { newValue: value, oldValue: old === undefined ? null : old.value }, timestamp: r.timestamp, headers: r.headers });
  }
}

/** Used by the driver: a versioned view of a versioned table's store. @internal */
export function versionedView<K, V>(store: KeyValueStore<K, Versions<V>>, historyRetentionMs: number): VersionedKeyValueStore<K, V> {
  return versionedFacade(store, historyRetentionMs);
}

/** @internal A versioned table named `name` over `parent` (builder.table / toTable with `versioned`). */
export function addVersionedTable<K, V>(
  b: InternalBuilder,
  name: string,
  parent: string,
  operator: string,
  versioned: VersionedTableOptions,
  opts: { readonly logging?: boolean; readonly rangeScans?: boolean },
  keySerde: Serde<K>,
  valueSerde: Serde<V>,
): KTable<K, V> {
  const retention = versioned?.historyRetentionMs;
  if (typeof retention !== 'number' || !(retention >= 0) || !Number.isFinite(retention)) {
    throw new TopologyError(`${operator} "${name}": versioned.historyRetentionMs must be a non-negative number of ms, got ${String(retention)}.`);
  }
  b.addStore(
    {
      name,
      kind: 'keyValue',
      keySerde,
      valueSerde: versionedSerde(valueSerde),
      logging: opts.logging ?? true,
      caching: false,
      versionedHistoryRetentionMs: retention,
      // a versioned store is only read by key (no range queries): no key index unless asked for
      rangeScans: opts.rangeScans ?? false,
    },
    operator,
  );
  b.addProcessor({ name, operator, parents: [parent], supplier: () => new VersionedTableSourceProcessor<K, V>(name, retention), stores: [name] });
  return new KTable<K, V>(b, name, keySerde, valueSerde, name, versionedGetter<K, V>(name, retention));
}
