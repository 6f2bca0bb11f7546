import type { KeyValue, Serde } from '@vltava/dsl';
import type { TestRecord } from './testRecord.js';

/** @internal The driver side of an input topic. */
export interface InputSink {
  pipe(topic: string, key: Buffer | null, value: Buffer | null, timestamp: number, headers: TestRecord<unknown, unknown>['headers']): void;
  /** Runs `fn` (which pipes records) and then drains internal topics and commits once. */
  batch(fn: () => void): void;
}

export interface InputTopicOptions<K, V> {
  readonly keySerde: Serde<K>;
  readonly valueSerde: Serde<V>;
  /** Timestamp of the first record piped without an explicit one (default: the driver's initial wall-clock time). */
  readonly startTimestamp?: number;
  /** Added to the topic's time after each record piped without an explicit timestamp (default 0). */
  readonly autoAdvanceMs?: number;
}

/**
 * Pipes records into a source topic of the topology. Each call processes the record(s)
 * synchronously, including everything they cause downstream through repartition topics, and
 * then commits (flushes the stores' caches).
 */
export class TestInputTopic<K, V> {
  private time: number;

  /** @internal */
  constructor(
    readonly name: string,
    private readonly sink: InputSink,
    private readonly keySerde: Serde<K>,
    private readonly valueSerde: Serde<V>,
    startTimestamp: number,
    private readonly autoAdvanceMs: number,
  ) {
    this.time = startTimestamp;
  }

  private send(key: K | null | undefined, value: V | null | undefined, timestamp: number | undefined, headers: TestRecord<K, V>['headers']): void {
    let ts = timestamp;
    if (ts === undefined) {
      ts = this.time;
      this.time += this.autoAdvanceMs;
    }
    const k = key === null || key === undefined ? null : this.keySerde.serialize(key, this.name);
    const v = value === null || value === undefined ? null : this.valueSerde.serialize(value, this.name);
    this.sink.pipe(this.name, k, v, ts, headers);
  }

  /** Pipes one record. `null` key: partitioned round-robin; `null` value: a tombstone. */
  pipeInput(key: K | null, value: V | null, timestamp?: number): void {
    this.sink.batch(() => this.send(key, value, timestamp, undefined));
  }

  /** Pipes one record with a null key. */
  pipeValue(value: V | null, timestamp?: number): void {
    this.sink.batch(() => this.send(null, value, timestamp, undefined));
  }

  /** Pipes one record with headers. */
  pipeRecord(record: TestRecord<K, V>): void {
    this.sink.batch(() => this.send(record.key, record.value, record.timestamp, record.headers));
  }

  /**
   * Pipes a list of records. With `startTimestamp`, record i gets `startTimestamp + i * advanceMs`;
   * otherwise the topic's time (and auto-advance). The driver commits once, after the list.
   */
  pipeKeyValueList(records: Iterable<KeyValue<K | null, V | null>>, startTimestamp?: number, advanceMs = 0): void {
    this.sink.batch(() => {
      let ts = startTimestamp;
      for (const kv of records) {
        this.send(kv.key, kv.value, ts, undefined);
        if (ts !== undefined) ts += advanceMs;
      }
    });
  }

  /** Pipes a list of values with null keys (see pipeKeyValueList for timestamps). */
  pipeValueList(values: Iterable<V | null>, startTimestamp?: number, advanceMs = 0): void {
    this.sink.batch(() => {
      let ts = startTimestamp;
      for (const v of values) {
        this.send(null, v, ts, undefined);
        if (ts !== undefined) ts += advanceMs;
      }
    });
  }

  /** Advances the time of records piped without an explicit timestamp. */
  advanceTime(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advanceTime: ms must be >= 0, got ${ms}`);
    this.time += ms;
  }

  /** The timestamp the next record without an explicit timestamp gets. */
  currentTime(): number {
    return this.time;
  }
}
