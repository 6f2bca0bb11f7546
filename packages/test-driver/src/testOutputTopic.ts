import type { CollectedRecord, KeyValue, Serde } from '@vltava/dsl';
import type { TestRecord } from './testRecord.js';

/** Capacity kept across reads (entries); a topic that once held more starts over with small arrays. */
const KEEP_CAPACITY = 1 << 16;

/**
 * @internal A topic's captured records, consumed by output topics in send order. The arrays keep
 * their capacity when everything was read, so a steady produce/read cycle allocates nothing per record
 * but the record itself.
 */
export class CapturedTopic {
  private records: (CollectedRecord | undefined)[] = [];
  private partitions = new Int32Array(64);
  private offsets = new Float64Array(64);
  private count = 0;
  private position = 0;

  push(r: CollectedRecord, partition: number, offset: number): void {
    const i = this.count++;
    if (i === this.partitions.length) {
      const p = new Int32Array(i * 2);
      p.set(this.partitions);
      this.partitions = p;
      const o = new Float64Array(i * 2);
      o.set(this.offsets);
      this.offsets = o;
    }
    this.records[i] = r;
    this.partitions[i] = partition;
    this.offsets[i] = offset;
  }

  /** Index of the next unread record (then call `advance`), or -1. */
  peek(): number {
    return this.position < this.count ? this.position : -1;
  }

  record(i: number): CollectedRecord {
    return this.records[i]!;
  }
  partition(i: number): number {
    return this.partitions[i]!;
  }
  offset(i: number): number {
    return this.offsets[i]!;
  }

  advance(): void {
    this.records[this.position++] = undefined; // read: no longer kept alive
    if (this.position === this.count) {
      this.position = 0;
      this.count = 0;
      if (this.partitions.length > KEEP_CAPACITY) {
        this.records = [];
        this.partitions = new Int32Array(64);
        this.offsets = new Float64Array(64);
      }
    }
  }

  size(): number {
    return this.count - this.position;
  }
}

export interface OutputTopicOptions<K, V> {
  readonly keySerde: Serde<K>;
  readonly valueSerde: Serde<V>;
}

/**
 * Reads what the topology wrote to a topic, across all its partitions, in the order it was
 * written. Reading consumes: every record is read once (by any reader of the topic).
 */
export class TestOutputTopic<K, V> {
  /** @internal */
  constructor(
    readonly name: string,
    private readonly captured: CapturedTopic,
    private readonly keySerde: Serde<K>,
    private readonly valueSerde: Serde<V>,
  ) {}

  private next(): number {
    const i = this.captured.peek();
    if (i < 0) throw new Error(`Output topic "${this.name}" is empty: check isEmpty() or getQueueSize() before reading.`);
    return i;
  }

  private key(r: CollectedRecord): K | null {
    return r.key === null ? null : this.keySerde.deserialize(r.key, this.name);
  }

  private value(r: CollectedRecord): V | null {
    return r.value === null ? null : this.valueSerde.deserialize(r.value, this.name);
  }

  /** Reads the next record's value. Throws if the topic is empty. */
  readValue(): V | null {
    const i = this.next();
    const v = this.value(this.captured.record(i));
    this.captured.advance();
    return v;
  }

  /** Reads the next record as `{ key, value }`. Throws if the topic is empty. */
  readKeyValue(): KeyValue<K | null, V | null> {
    const i = this.next();
    const r = this.captured.record(i);
    const kv = { key: this.key(r), value: this.value(r) };
    this.captured.advance();
    return kv;
  }

  /** Reads the next record with timestamp, headers, partition and offset. Throws if the topic is empty. */
  readRecord(): TestRecord<K, V> {
    const i = this.next();
    const r = this.captured.record(i);
    const rec: TestRecord<K, V> = {
      key: this.key(r),
      value: this.value(r),
      timestamp: r.timestamp,
      headers: r.headers,
      partition: this.captured.partition(i),
      offset: this.captured.offset(i),
    };
    this.captured.advance();
    return rec;
  }

  readRecordsToList(): TestRecord<K, V>[] {
    const n = this.captured.size();
    const out = new Array<TestRecord<K, V>>(n);
    for (let j = 0; j < n; j++) out[j] = this.readRecord();
    return out;
  }

  readKeyValuesToList(): KeyValue<K | null, V | null>[] {
    const n = this.captured.size();
    const out = new Array<KeyValue<K | null, V | null>>(n);
    for (let j = 0; j < n; j++) out[j] = this.readKeyValue();
    return out;
  }

  /**
   * Reads all records into a map holding the latest value per key; a tombstone (null value)
   * removes the key. Keys are compared with `Map` semantics, so use primitive keys.
   */
  readKeyValuesToMap(): Map<K | null, V> {
    const out = new Map<K | null, V>();
    while (this.captured.size() > 0) {
      const kv = this.readKeyValue();
      if (kv.value === null) out.delete(kv.key);
      else out.set(kv.key, kv.value);
    }
    return out;
  }

  readValuesToList(): (V | null)[] {
    const n = this.captured.size();
    const out = new Array<(V | null)>(n);
    for (let j = 0; j < n; j++) out[j] = this.readValue();
    return out;
  }

  isEmpty(): boolean {
    return this.captured.size() === 0;
  }

  getQueueSize(): number {
    return this.captured.size();
  }
}
