/**
 * Views that show the plain values of a timestamped store (StoreSpec.timestamped: the DSL's
 * tables and aggregations keep `{ value, timestamp }`), as Kafka Streams' TopologyTestDriver
 * getKeyValueStore shows a TimestampedKeyValueStore's values. A put through the view keeps the
 * key's stored timestamp (0 for a new key). `getTimestampedKeyValueStore` /
 * `getTimestampedWindowStore` return the stores themselves.
 */
import type { KeyValue, KeyValueStore, WindowStore } from '@vltava/dsl';

interface VT<V> {
  readonly value: V;
  readonly timestamp: number;
}

const plain = <V>(vt: VT<V> | undefined): V | undefined => (vt === undefined ? undefined : vt.value);

function* plainEntries<K, V>(it: Iterable<KeyValue<K, VT<V>>>): Iterable<KeyValue<K, V>> {
  for (const kv of it) yield { key: kv.key, value: kv.value.value };
}

export function plainKeyValueStore<K, V>(s: KeyValueStore<K, VT<V>>): KeyValueStore<K, V> {
  const stamp = (key: K, value: V): VT<V> => ({ value, timestamp: s.get(key)?.timestamp ?? 0 });
  return {
    name: s.name,
    get: (key) => plain(s.get(key)),
    range: (from, to) => plainEntries(s.range(from, to)),
    all: () => plainEntries(s.all()),
    prefixScan: (prefix, serde) => plainEntries(s.prefixScan(prefix, serde)),
    approximateNumEntries: () => s.approximateNumEntries(),
    put: (key, value) => s.put(key, stamp(key, value)),
    putIfAbsent: (key, value) => plain(s.putIfAbsent(key, stamp(key, value))),
    putAll: (entries) => {
      for (const e of entries) s.put(e.key, stamp(e.key, e.value));
    },
    delete: (key) => plain(s.delete(key)),
  };
}

export function plainWindowStore<K, V>(s: WindowStore<K, VT<V>>): WindowStore<K, V> {
  return {
    name: s.name,
    fetch: (key, start) => plain(s.fetch(key, start)),
    fetchRange: (key, from, to) => plainEntries(s.fetchRange(key, from, to)),
    fetchAll: (from, to) => plainEntries(s.fetchAll(from, to)),
    all: () => plainEntries(s.all()),
    put: (key, value, start) => s.put(key, value === undefined ? undefined : { value, timestamp: s.fetch(key, start)?.timestamp ?? 0 }, start),
  };
}
