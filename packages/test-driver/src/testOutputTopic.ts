import type { CollectedRecord, KeyValue, Serde } from '@vltava/dsl';
import type { TestRecord } from './testRecord.js';

/** @internal A topic's captured records, consumed by output topics in send order. */
export class CapturedTopic {
  records: (CollectedRecord & { partition: number; offset: number })[] = [];
  position = 0;

  push(r: CollectedRecord & { partition: number; offset: number }): void {
    this.records.push(r);
  }

  take(): (CollectedRecord & { partition: number; offset: number }) | undefined {
    const r = this.records[this.position];
    if (r === undefined) return undefined;
    this.position++;
    if (this.position > 1024 && this.position * 2 > this.records.length) {
      this.records = this.records.slice(this.position);
      this.position = 0;
    }
    return r;
  }

  size(): number {
    return this.records.length - this.position;
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

  private next(): CollectedRecord & { partition: number; offset: number } {
    const r = this.captured.take();
    if (r === undefined) throw new Error(`Output topic "${this.name}" is empty: check isEmpty() or getQueueSize() before reading.`);
    return r;
  }

  private decode(r: CollectedRecord & { partition: number; offset: number }): TestRecord<K, V> {
    return {
      key: r.key === null ? null : this.keySerde.deserialize(r.key, this.name),
      value: r.value === null ? null : this.valueSerde.deserialize(r.value, this.name),
      timestamp: r.timestamp,
      headers: r.headers,
      partition: r.partition,
      offset: r.offset,
    };
  }

  /** Reads the next record's value. Throws if the topic is empty. */
  readValue(): V | null {
    const r = this.next();
    return r.value === null ? null : this.valueSerde.deserialize(r.value, this.name);
  }

  /** Reads the next record as `{ key, value }`. Throws if the topic is empty. */
  readKeyValue(): KeyValue<K | null, V | null> {
    const r = this.decode(this.next());
    return { key: r.key, value: r.value };
  }

  /** Reads the next record with timestamp, headers, partition and offset. Throws if the topic is empty. */
  readRecord(): TestRecord<K, V> {
    return this.decode(this.next());
  }

  readRecordsToList(): TestRecord<K, V>[] {
    const out: TestRecord<K, V>[] = [];
    while (this.captured.size() > 0) out.push(this.decode(this.next()));
    return out;
  }

  readKeyValuesToList(): KeyValue<K | null, V | null>[] {
    const out: KeyValue<K | null, V | null>[] = [];
    while (this.captured.size() > 0) out.push(this.readKeyValue());
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
    const out: (V | null)[] = [];
    while (this.captured.size() > 0) out.push(this.readValue());
    return out;
  }

  isEmpty(): boolean {
    return this.captured.size() === 0;
  }

  getQueueSize(): number {
    return this.captured.size();
  }
}
