/**
 * The versioned store's semantics (Kafka Streams' VersionedKeyValueStore contract, KIP-889): puts
 * in any order, reads as of a time, tombstones, same-timestamp replacement, history retention.
 */
import test from 'ava';
import type { KeyValue, KeyValueStore } from './stores.js';
import { Serdes } from './serdes.js';
import { VersionedStoreFacade, versionedSerde, type Versions } from './versioned.js';

function mapStore<V>(): KeyValueStore<string, Versions<V>> & { readonly map: Map<string, Versions<V>> } {
  const map = new Map<string, Versions<V>>();
  return {
    name: 'v',
    map,
    get: (k) => map.get(k),
    put: (k, v) => void map.set(k, v),
    delete: (k) => {
      const old = map.get(k);
      map.delete(k);
      return old;
    },
    putIfAbsent: () => undefined,
    putAll: () => undefined,
    range: () => [] as KeyValue<string, Versions<V>>[],
    all: () => [...map].map(([key, value]) => ({ key, value })),
    prefixScan: () => [],
    approximateNumEntries: () => map.size,
  };
}

test('versions in any order; get as of a time; validTo is the next version', (t) => {
  const s = new VersionedStoreFacade<string, string>(mapStore(), 1000);
  t.is(s.put('k', 'b', 20), 'latest');
  t.is(s.put('k', 'a', 10), 'history');
  t.is(s.put('k', 'c', 30), 'latest');
  t.deepEqual(s.get('k'), { value: 'c', timestamp: 30 });
  t.deepEqual(s.get('k', 15), { value: 'a', timestamp: 10, validTo: 20 });
  t.deepEqual(s.get('k', 20), { value: 'b', timestamp: 20, validTo: 30 });
  t.is(s.get('k', 9), undefined, 'before the first version');
  t.deepEqual(s.get('k', 1_000), { value: 'c', timestamp: 30 });
});

test('a put at an existing timestamp replaces that version; a tombstone ends a version', (t) => {
  const s = new VersionedStoreFacade<string, string>(mapStore(), 1000);
  s.put('k', 'a', 10);
  t.is(s.put('k', 'a2', 10), 'latest');
  t.deepEqual(s.get('k', 10), { value: 'a2', timestamp: 10 });
  t.deepEqual(s.delete('k', 15), { value: 'a2', timestamp: 10 });
  t.is(s.get('k'), undefined);
  t.is(s.get('k', 16), undefined);
  t.deepEqual(s.get('k', 14), { value: 'a2', timestamp: 10, validTo: 15 });
  s.put('k', 'b', 20);
  t.deepEqual(s.get('k'), { value: 'b', timestamp: 20 });
});

test('history retention: puts and reads older than stream time - retention are refused; the version valid at the horizon is kept', (t) => {
  const inner = mapStore<string>();
  const s = new VersionedStoreFacade<string, string>(inner, 100);
  s.put('k', 'a', 0);
  s.put('k', 'b', 50);
  s.put('k', 'c', 120);
  s.put('other', 'x', 300); // stream time 300: horizon 200
  t.is(s.put('k', 'late', 150), 'not-put');
  t.is(s.get('k', 199), undefined, 'older than the history retention');
  t.deepEqual(s.get('k', 250), { value: 'c', timestamp: 120 });
  s.put('k', 'd', 260); // trims the versions that ended before the horizon
  t.deepEqual(inner.map.get('k')!.map((v) => v.value), ['c', 'd']);
});

test('versionedSerde round-trips values and tombstones', (t) => {
  const serde = versionedSerde(Serdes.string());
  const versions = [
    { timestamp: 1, value: 'a' },
    { timestamp: 5, value: null },
    { timestamp: 9, value: '' },
  ];
  t.deepEqual(serde.deserialize(serde.serialize(versions)), versions);
  t.is(serde.name, 'versioned<string>');
});
