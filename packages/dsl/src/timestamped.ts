/**
 * Timestamped store values, as Kafka Streams' TimestampedKeyValueStore / TimestampedWindowStore:
 * every table-producing operator stores its value with the timestamp of its latest result (for an
 * aggregation, the largest timestamp of the records that contributed), so updates, cache flushes,
 * joins and restarts all carry the timestamp Kafka Streams would give the result.
 *
 * The bytes are the 8-byte big-endian timestamp followed by the inner serde's bytes. A store that
 * holds such values has `timestamped: true` in its StoreSpec; the test driver's getKeyValueStore /
 * getWindowStore / getSessionStore show the plain values of such a store.
 */
import type { Serde } from './serde.js';
import { readInt64, Serdes, writeInt64 } from './serdes.js';
import type { StoreSpec } from './stores.js';

export interface ValueAndTimestamp<V> {
  readonly value: V;
  readonly timestamp: number;
}

const INT64: Serde<unknown> = Serdes.int64() as Serde<unknown>;

export function timestampedSerde<V>(inner: Serde<V>): Serde<ValueAndTimestamp<V>> {
  if ((inner as Serde<unknown>) === INT64) return timestampedInt64 as unknown as Serde<ValueAndTimestamp<V>>;
  return genericTimestamped(inner);
}

/** The spec of a store holding `ValueAndTimestamp<V>`, from the spec of one holding `V`. */
export function timestampedSpec<K, V>(spec: StoreSpec<K, V>): StoreSpec<K, ValueAndTimestamp<V>> {
  return { ...spec, valueSerde: timestampedSerde(spec.valueSerde), timestamped: true };
}

/** The inner serde of a timestamped store's value serde (for views that show plain values). */
export function isTimestamped(spec: StoreSpec): boolean {
  return spec.timestamped === true;
}

/** timestamped<int64> (counts): one 16-byte buffer, no intermediate one; the same bytes as the generic form. */
const timestampedInt64: Serde<ValueAndTimestamp<number>> = {
  name: `timestamped<${INT64.name}>`,
  serialize(vt, topic) {
    const n = vt.value;
    if (!Number.isSafeInteger(n)) return genericInt64.serialize(vt, topic); // the int64 serde's error
    const buf = Buffer.allocUnsafe(16);
    writeInt64(buf, vt.timestamp, 0);
    writeInt64(buf, n, 8);
    return buf;
  },
  deserialize(data, topic) {
    if (data.length !== 16) return genericInt64.deserialize(data, topic); // the int64 serde's error
    return { value: readInt64(data, 8), timestamp: readInt64(data, 0) };
  },
};

function genericTimestamped<V>(inner: Serde<V>): Serde<ValueAndTimestamp<V>> {
  return {
    name: `timestamped<${inner.name}>`,
    serialize(vt, topic) {
      const v = inner.serialize(vt.value, topic);
      const buf = Buffer.allocUnsafe(8 + v.length);
      writeInt64(buf, vt.timestamp, 0);
      v.copy(buf, 8);
      return buf;
    },
    deserialize(data, topic) {
      return { value: inner.deserialize(data.subarray(8), topic), timestamp: readInt64(data, 0) };
    },
  };
}
const genericInt64 = genericTimestamped(INT64 as Serde<number>);
