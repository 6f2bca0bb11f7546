/**
 * The per-record shortcuts of the store stack keep the semantics of the general path: ASCII keys of
 * the built-in string serde skip the key Buffer, the overlay reuses the entry its last get found,
 * timestamped<int64> values are written in one buffer.
 */
import test from 'ava';
import { Serdes, timestampedSerde, type KeyValueStore, type StoreSpec, type ValueAndTimestamp } from '@vltava/dsl';
import type { StateBackend } from './api.js';
import { openTaskStores } from './taskStores.js';
import { ListCollector, tempDir } from './testSupport.test.helper.js';

function spec(name: string): StoreSpec {
  return { name, kind: 'keyValue', keySerde: Serdes.string(), valueSerde: timestampedSerde(Serdes.int64()), logging: true, caching: false } as StoreSpec;
}

async function open(backend: StateBackend) {
  const tmp = tempDir(`hot-${backend}`);
  const collector = new ListCollector();
  const opts = { applicationId: 'app', taskId: '0_0', partition: 0, specs: [spec('s')], collector, backend, stateDir: tmp.dir, recordTimestamp: () => 7 };
  let stores = await openTaskStores(opts);
  return {
    collector,
    store: () => stores.getStore<KeyValueStore<string, ValueAndTimestamp<number>>>('s'),
    stores: () => stores,
    /** LevelDB: close and open again; memory (nothing survives a close): keep the stores. */
    reopen: async () => {
      if (backend === 'memory') return;
      await stores.close();
      stores = await openTaskStores(opts);
    },
    done: async () => {
      await stores.close();
      tmp.cleanup();
    },
  };
}

for (const backend of ['memory', 'leveldb'] as const) {
  test(`${backend}: string keys, ASCII or not, keep UTF-8 byte order, changelog key bytes and values across a commit`, async (t) => {
    const c = await open(backend);
    const keys = ['b', 'é', 'a\u0000', 'a', '日本', 'z', 'ab', '\u007f', 'é2'];
    keys.forEach((k, i) => c.store().put(k, { value: i, timestamp: 100 + i }));
    const byBytes = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8')));
    t.deepEqual([...c.store().all()].map((e) => e.key), byBytes, 'uncommitted range is in UTF-8 byte order');
    t.deepEqual(
      c.collector.records.map((r) => r.key),
      keys.map((k) => Buffer.from(k, 'utf8')),
      'changelog keys are the UTF-8 bytes',
    );
    t.deepEqual(c.collector.records[1]!.value, Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 101]), Buffer.from([0, 0, 0, 0, 0, 0, 0, 1])]), 'timestamp then count, big-endian');
    await c.stores().commit(new Map([['s', keys.length - 1]]));
    await c.reopen();
    for (const [i, k] of keys.entries()) t.deepEqual(c.store().get(k), { value: i, timestamp: 100 + i }, k);
    t.deepEqual([...c.store().all()].map((e) => e.key), byBytes, 'committed range is in UTF-8 byte order');
    await c.done();
  });

  test(`${backend}: an update after a commit or an abort is written again (the overlay's reused entry is never stale)`, async (t) => {
    const c = await open(backend);
    const s = c.store();
    s.put('k', { value: 1, timestamp: 1 });
    t.deepEqual(s.get('k'), { value: 1, timestamp: 1 }); // the overlay remembers the entry of 'k'
    await c.stores().commit(new Map([['s', 0]]));
    s.put('k', { value: 2, timestamp: 2 }); // the entry was released by the commit: a new one
    t.deepEqual(s.get('k'), { value: 2, timestamp: 2 });
    await c.stores().commit(new Map([['s', 1]]));
    t.is(c.stores().committedView<KeyValueStore<string, ValueAndTimestamp<number>>>('s').get('k')?.value, 2, 'the second update reached the database');
    t.is(s.get('k')?.value, 2);
    c.stores().abort(); // nothing pending: the store stays at 2
    s.put('k', { value: 3, timestamp: 3 });
    c.stores().abort(); // drops 3
    t.is(s.get('k')?.value, 2, 'abort dropped the pending update');
    s.put('k', { value: 4, timestamp: 4 });
    s.put('other', { value: 9, timestamp: 4 });
    s.put('k', { value: 5, timestamp: 5 }); // another key in between
    await c.stores().commit(new Map([['s', 5]]));
    await c.reopen();
    t.is(c.store().get('k')?.value, 5);
    t.is(c.store().get('other')?.value, 9);
    await c.done();
  });
}
