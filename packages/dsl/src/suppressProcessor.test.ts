/**
 * Issue 13, item 13: suppress(untilWindowCloses) decides by what it emitted, not by what its stream
 * time implies. An update can reach the buffer after stream time closed its window without its
 * window ever being emitted (the record cache flushes keys in first-write order; an aggregation
 * restarted with a fresh stream time accepts records suppress has moved past): Kafka Streams'
 * KTableSuppressProcessor buffers it and emits it at once. An update for a window already emitted
 * is dropped, so a final result stays final.
 */
import test from 'ava';
import type { Change, ProcessorContext, StreamRecord } from './processor.js';
import { Serdes } from './serdes.js';
import type { KeyValue, KeyValueStore, Windowed } from './stores.js';
import { type Buffered, SuppressProcessor, bufferKeySerde } from './windowProcessors.js';

/** A key-value store sorted by serialized key, as the state package's stores are. */
function sortedStore<V>(): KeyValueStore<Windowed<string>, V> {
  const serde = bufferKeySerde(Serdes.string());
  const m = new Map<string, { key: Windowed<string>; value: V }>();
  const hex = (k: Windowed<string>) => serde.serialize(k).toString('hex');
  const sorted = (): KeyValue<Windowed<string>, V>[] => [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([, e]) => e);
  return {
    name: 'final',
    get: (k) => m.get(hex(k))?.value,
    put: (k, v) => void m.set(hex(k), { key: k, value: v }),
    delete: (k) => {
      const old = m.get(hex(k))?.value;
      m.delete(hex(k));
      return old;
    },
    all: sorted,
    range: sorted,
    prefixScan: (p, ps) => {
      const pre = ps.serialize(p).toString('hex');
      return [...m.entries()].filter(([k]) => k.startsWith(pre)).sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([, e]) => e);
    },
    putIfAbsent: () => undefined,
    putAll: () => undefined,
    approximateNumEntries: () => m.size,
  };
}

function harness() {
  const store = sortedStore<Buffered<number>>();
  const out: StreamRecord<Windowed<string>, Change<number>>[] = [];
  const dropped: string[] = [];
  const ctx = {
    getStateStore: () => store,
    forward: (r: StreamRecord<Windowed<string>, Change<number>>) => void out.push(r),
    recordDropped: (reason: string) => void dropped.push(reason),
  } as unknown as ProcessorContext<Windowed<string>, Change<number>>;
  const p = new SuppressProcessor<string, number>('final', 10, false, 70);
  p.init(ctx);
  const update = (key: string, start: number, value: number, timestamp: number) =>
    p.process({ key: { key, window: { start, end: start + 60 } }, value: { newValue: value, oldValue: null }, timestamp });
  const emitted = () => out.splice(0).map((r) => [r.key.key, r.key.window.start, r.value.newValue, r.timestamp]);
  return { update, emitted, dropped, store };
}

test('suppress emits a never-emitted window whose first update arrives after stream time closed it (KTableSuppressProcessor)', (t) => {
  const h = harness();
  h.update('a', 120, 1, 130); // stream time 130: [0, 60) and [60, 120) are closed (end + 10 <= 130)
  t.deepEqual(h.emitted(), []);
  h.update('late', 0, 1, 55); // never emitted: emitted at once, not dropped as "already emitted"
  t.deepEqual(h.emitted(), [['late', 0, 1, 55]]);
  t.deepEqual(h.dropped, []);
  h.update('late', 0, 2, 56); // its final result is out: a second one would not be final
  t.deepEqual(h.emitted(), []);
  t.deepEqual(h.dropped, ['late record (window closed)']);
});

test('suppress forgets emitted windows once they are older than the aggregation keeps them', (t) => {
  const h = harness();
  h.update('a', 0, 1, 5);
  h.update('b', 60, 1, 70); // closes [0, 60)
  t.deepEqual(h.emitted(), [['a', 0, 1, 5]]);
  t.is([...h.store.all()].length, 3, 'the buffered window, the stream time and one marker');
  h.update('c', 200, 1, 250); // closed up to end 240: markers of windows that ended before 240 - 70 are purged
  t.deepEqual(h.emitted(), [['b', 60, 1, 70]]);
  t.deepEqual([...h.store.all()].map((kv) => kv.key.key).filter((k) => k !== null), ['c'], 'only the open window is left');
  h.update('a', 0, 2, 10); // forgotten: emitted again (as Kafka Streams, which keeps no markers at all)
  t.deepEqual(h.emitted(), [['a', 0, 2, 10]]);
});
