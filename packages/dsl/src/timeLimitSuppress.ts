/**
 * `suppress(Suppressed.untilTimeLimit(ms, bufferConfig, { name }))`: rate-limits a table's updates,
 * as Kafka Streams' KTableSuppressProcessor with an in-memory time-ordered buffer does:
 *
 * - the buffer keeps the **latest** update per key, under the key's **buffer time**: the timestamp
 *   of the first update buffered since the key was last emitted;
 * - after each record, every key whose buffer time <= stream time - limit is emitted, oldest buffer
 *   time first, with its latest value, the value before its first buffered update as the old value,
 *   and the timestamp of its latest update; tombstones are emitted too;
 * - over `maxRecords` / `maxBytes`, `emitEarlyWhenFull` emits the oldest keys until it fits, and
 *   `shutDownWhenFull` stops the task with an error.
 *
 * The buffer is the change-logged key-value store `<name>`: its entries, their changelog records and
 * the emitted results commit together, so under exactly-once a crash neither loses nor repeats an
 * emission. Keys of the store (bytes):
 *   0x00                      the operator's stream time (value: 8 bytes)
 *   0x01 + key                the key's buffer time (value: 8 bytes)
 *   0x02 + bufferTime(8) + key   the buffered update: timestamp(8), flags, prior length(4), new length(4), prior, new, headers
 */
import { StreamsError, TopologyError } from './errors.js';
import type { Change, Processor, ProcessorContext, StreamRecord } from './processor.js';
import type { Serde } from './serde.js';
import { readInt64, writeInt64 } from './serdes.js';
import { decodeHeaders, encodeHeaders } from './collector.js';
import type { KeyValueStore } from './stores.js';
import type { ValueGetter } from './valueGetter.js';

/** What the buffer does when it holds more than its maximum. */
export type BufferFullStrategy = 'emit-early' | 'shut-down';

/** The size limits of a suppress buffer (Kafka Streams' `Suppressed.BufferConfig`); immutable. */
export class BufferConfig {
  private constructor(
    readonly maxRecords: number,
    readonly maxBytes: number,
    readonly whenFull: BufferFullStrategy,
  ) {}

  /** No limit: the buffer holds every key until its time limit passes. */
  static unbounded(): BufferConfig {
    return new BufferConfig(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, 'shut-down');
  }
  /** At most `n` keys; when full, emits the oldest early (change with `shutDownWhenFull()`). */
  static maxRecords(n: number): BufferConfig {
    return new BufferConfig(limit(n, 'maxRecords'), Number.POSITIVE_INFINITY, 'emit-early');
  }
  /** At most `n` bytes (each key counts its serialized key, values and headers plus 100 bytes); when full, emits the oldest early. */
  static maxBytes(n: number): BufferConfig {
    return new BufferConfig(Number.POSITIVE_INFINITY, limit(n, 'maxBytes'), 'emit-early');
  }
  withMaxRecords(n: number): BufferConfig {
    return new BufferConfig(limit(n, 'maxRecords'), this.maxBytes, this.whenFull);
  }
  withMaxBytes(n: number): BufferConfig {
    return new BufferConfig(this.maxRecords, limit(n, 'maxBytes'), this.whenFull);
  }
  withNoBound(): BufferConfig {
    return new BufferConfig(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, this.whenFull);
  }
  /** When full, emit the oldest keys before their time (the results are then not rate-limited). */
  emitEarlyWhenFull(): BufferConfig {
    return new BufferConfig(this.maxRecords, this.maxBytes, 'emit-early');
  }
  /** When full, stop the task with a StreamsError (the results stay rate-limited; raise the limit and restart). */
  shutDownWhenFull(): BufferConfig {
    return new BufferConfig(this.maxRecords, this.maxBytes, 'shut-down');
  }
}

function limit(n: number, what: string): number {
  if (typeof n !== 'number' || !(n >= 0) || !Number.isInteger(n)) throw new TopologyError(`BufferConfig.${what}: expected a non-negative integer, got ${String(n)}.`);
  return n;
}

/** Bytes counted per buffered key on top of its serialized key and values (timestamps, bookkeeping). */
export const BUFFER_ENTRY_OVERHEAD = 100;

const STREAM_TIME = Buffer.from([0]);
const ENTRIES_FROM = Buffer.from([2]);
const ENTRIES_TO = Buffer.from([3]);

/** The byte-level serdes of the buffer store (identity, named after the table's serdes for the store shape). */
export function timeLimitBufferSerdes(keySerde: Serde<unknown>, valueSerde: Serde<unknown>): { key: Serde<Buffer>; value: Serde<Buffer> } {
  const id = (name: string): Serde<Buffer> => ({ name, serialize: (b) => b, deserialize: (b) => b });
  return { key: id(`suppress-time-key<${keySerde.name}>`), value: id(`suppress-time-value<${valueSerde.name}>`) };
}

interface Entry {
  readonly storeKey: Buffer;
  readonly bufferTime: number;
  readonly keyBytes: Buffer;
  readonly size: number;
}

export class TimeLimitSuppressProcessor<K, V> implements Processor<K, Change<V>, K, Change<V>> {
  private ctx!: ProcessorContext<K, Change<V>>;
  private store!: KeyValueStore<Buffer, Buffer>;
  private loaded = false;
  private observed = -1;
  private count = 0;
  private bytes = 0;
  /** Smallest buffer time; +Infinity: empty. */
  private minTime = Number.POSITIVE_INFINITY;

  constructor(
    private readonly storeName: string,
    private readonly limitMs: number,
    private readonly buffer: BufferConfig,
    private readonly keySerde: Serde<K>,
    private readonly valueSerde: Serde<V>,
  ) {}

  init(context: ProcessorContext<K, Change<V>>): void {
    this.ctx = context;
    this.store = context.getStateStore<KeyValueStore<Buffer, Buffer>>(this.storeName);
  }

  /** At the first record (after the restore): the stream time, count, bytes and oldest time of the buffer. */
  private load(): void {
    this.loaded = true;
    const st = this.store.get(STREAM_TIME);
    if (st !== undefined) this.observed = readInt64(st, 0);
    for (const kv of this.store.range(ENTRIES_FROM, ENTRIES_TO)) {
      this.count++;
      this.bytes += kv.key.length - 9 + kv.value.length - 17 + BUFFER_ENTRY_OVERHEAD;
      const t = readInt64(kv.key, 1);
      if (t < this.minTime) this.minTime = t;
    }
  }

  process(r: StreamRecord<K, Change<V>>): void {
    if (!this.loaded) this.load();
    if (r.timestamp > this.observed) {
      this.observed = r.timestamp;
      const b = Buffer.allocUnsafe(8);
      writeInt64(b, r.timestamp, 0);
      this.store.put(STREAM_TIME, b);
    }
    if (r.key === null || r.key === undefined) {
      this.ctx.recordDropped('null key in suppress');
      return;
    }
    this.put(r);
    this.enforce();
  }

  private put(r: StreamRecord<K, Change<V>>): void {
    const keyBytes = this.keySerde.serialize(r.key);
    const indexKey = Buffer.allocUnsafe(1 + keyBytes.length);
    indexKey[0] = 1;
    keyBytes.copy(indexKey, 1);
    const idx = this.store.get(indexKey);
    let bufferTime: number;
    let prior: Buffer | null;
    let entryKey: Buffer;
    if (idx === undefined) {
      bufferTime = r.timestamp;
      prior = r.value.oldValue === null ? null : this.valueSerde.serialize(r.value.oldValue);
      entryKey = entryKeyOf(bufferTime, keyBytes);
      const t = Buffer.allocUnsafe(8);
      writeInt64(t, bufferTime, 0);
      this.store.put(indexKey, t);
      this.count++;
      if (bufferTime < this.minTime) this.minTime = bufferTime;
    } else {
      bufferTime = readInt64(idx, 0);
      entryKey = entryKeyOf(bufferTime, keyBytes);
      const old = this.store.get(entryKey);
      prior = old === undefined ? null : priorOf(old);
      if (old !== undefined) this.bytes -= keyBytes.length + old.length - 17 + BUFFER_ENTRY_OVERHEAD;
    }
    const nv = r.value.newValue === null ? null : this.valueSerde.serialize(r.value.newValue);
    const headers = encodeHeaders(r.headers);
    const pl = prior?.length ?? 0;
    const nl = nv?.length ?? 0;
    const value = Buffer.allocUnsafe(17 + pl + nl + headers.length);
    writeInt64(value, r.timestamp, 0);
    value[8] = (prior === null ? 0 : 1) | (nv === null ? 0 : 2);
    value.writeUInt32BE(pl, 9);
    value.writeUInt32BE(nl, 13);
    prior?.copy(value, 17);
    nv?.copy(value, 17 + pl);
    headers.copy(value, 17 + pl + nl);
    this.store.put(entryKey, value);
    this.bytes += keyBytes.length + value.length - 17 + BUFFER_ENTRY_OVERHEAD;
  }

  private overCapacity(): boolean {
    return this.count > this.buffer.maxRecords || this.bytes > this.buffer.maxBytes;
  }

  private enforce(): void {
    const expiry = this.observed - this.limitMs;
    if (this.minTime <= expiry) this.evictWhile((e) => e.bufferTime <= expiry);
    if (this.overCapacity()) {
      if (this.buffer.whenFull === 'emit-early') this.evictWhile(() => this.overCapacity());
      else {
        throw new StreamsError(
          `suppress "${this.storeName}" in task ${this.ctx.taskId}: its buffer is over its maximum (${this.count}/${this.buffer.maxRecords} keys, ` +
            `${this.bytes}/${this.buffer.maxBytes} bytes) and is configured with shutDownWhenFull(). Raise maxRecords/maxBytes, ` +
            `shorten the time limit, or use emitEarlyWhenFull(), then restart: the buffer is intact.`,
          { taskId: this.ctx.taskId },
        );
      }
    }
  }

  /** Emits and removes entries in buffer-time order while `cond` holds for the oldest. */
  private evictWhile(cond: (e: Entry) => boolean): void {
    const done: Entry[] = [];
    this.minTime = Number.POSITIVE_INFINITY;
    for (const kv of this.store.range(ENTRIES_FROM, ENTRIES_TO)) {
      const e: Entry = { storeKey: kv.key, bufferTime: readInt64(kv.key, 1), keyBytes: kv.key.subarray(9), size: kv.key.length - 9 + kv.value.length - 17 + BUFFER_ENTRY_OVERHEAD };
      if (!cond(e)) {
        this.minTime = e.bufferTime;
        break;
      }
      // counted as gone before the condition is asked again (emit-early stops once it fits)
      this.count--;
      this.bytes -= e.size;
      done.push(e);
      const v = kv.value;
      const flags = v[8] as number;
      const pl = v.readUInt32BE(9);
      const nl = v.readUInt32BE(13);
      const key = this.keySerde.deserialize(e.keyBytes);
      const oldValue = (flags & 1) === 0 ? null : this.valueSerde.deserialize(v.subarray(17, 17 + pl));
      const newValue = (flags & 2) === 0 ? null : this.valueSerde.deserialize(v.subarray(17 + pl, 17 + pl + nl));
      this.ctx.forward({ key, value: { newValue, oldValue }, timestamp: readInt64(v, 0), headers: decodeHeaders(v.subarray(17 + pl + nl)) });
    }
    for (const e of done) {
      this.store.delete(e.storeKey);
      const indexKey = Buffer.allocUnsafe(1 + e.keyBytes.length);
      indexKey[0] = 1;
      e.keyBytes.copy(indexKey, 1);
      this.store.delete(indexKey);
    }
  }
}

function entryKeyOf(bufferTime: number, keyBytes: Buffer): Buffer {
  const k = Buffer.allocUnsafe(9 + keyBytes.length);
  k[0] = 2;
  writeInt64(k, bufferTime, 1);
  keyBytes.copy(k, 9);
  return k;
}

function priorOf(v: Buffer): Buffer | null {
  if (((v[8] as number) & 1) === 0) return null;
  return v.subarray(17, 17 + v.readUInt32BE(9));
}

/**
 * How joins read a suppressed table (Kafka Streams' KTableSuppressProcessorSupplier view): a key
 * held in the buffer reads as what downstream last saw, its value from before the first buffered
 * update (none: no row), stamped with the buffered update's timestamp; other keys read through to
 * the parent table.
 */
export function timeLimitSuppressGetter<K, V>(parent: ValueGetter<K, V>, storeName: string, keySerde: Serde<K>, valueSerde: Serde<V>): ValueGetter<K, V> {
  return {
    stores: [...parent.stores, storeName],
    connect(ctx) {
      const store = ctx.getStateStore<KeyValueStore<Buffer, Buffer>>(storeName);
      const read = parent.connect(ctx);
      return (key) => {
        const keyBytes = keySerde.serialize(key);
        const indexKey = Buffer.allocUnsafe(1 + keyBytes.length);
        indexKey[0] = 1;
        keyBytes.copy(indexKey, 1);
        const idx = store.get(indexKey);
        if (idx === undefined) return read(key);
        const entry = store.get(entryKeyOf(readInt64(idx, 0), keyBytes));
        if (entry === undefined) return read(key);
        const prior = priorOf(entry);
        return prior === null ? undefined : { value: valueSerde.deserialize(prior), timestamp: readInt64(entry, 0) };
      };
    },
  };
}
