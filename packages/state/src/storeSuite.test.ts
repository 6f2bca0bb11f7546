/**
 * ONE suite, run against both bytes-store backends (memory and LevelDB), for every store type,
 * through the full stack (typed facade -> cache -> change-logging -> overlay -> bytes store).
 */
import test from 'ava';
import type { KeyValueStore, SessionStore, StoreSpec, WindowStore } from '@vltava/dsl';
import type { StateBackend, TaskStores } from './api.js';
import { InMemoryChangelog } from './inMemoryChangelog.js';
import { openTaskStores } from './taskStores.js';
import { jsonSerde, kvSpec, ListCollector, offsetsByStore, sessionSpec, stringSerde, tempDir, windowSpec } from './testSupport.test.helper.js';

const APP = 'app';

interface Ctx {
  stores: TaskStores;
  collector: ListCollector;
  reopen(): Promise<TaskStores>;
  done(): Promise<void>;
}

async function open(backend: StateBackend, specs: StoreSpec[], cacheMaxBytes?: number): Promise<Ctx> {
  const tmp = tempDir(backend);
  const collector = new ListCollector();
  let ts = 1000;
  const opts = {
    applicationId: APP,
    taskId: '0_3',
    partition: 3,
    specs,
    collector,
    backend,
    stateDir: tmp.dir,
    recordTimestamp: () => ts++,
    ...(cacheMaxBytes === undefined ? {} : { cacheMaxBytes }),
  };
  const ctx: Ctx = {
    stores: await openTaskStores(opts),
    collector,
    reopen: async () => {
      await ctx.stores.close();
      ctx.stores = await openTaskStores(opts);
      return ctx.stores;
    },
    done: async () => {
      await ctx.stores.close();
      tmp.cleanup();
    },
  };
  return ctx;
}

function suite(backend: StateBackend): void {
  const t = (title: string) => `${backend}: ${title}`;

  test(t('kv: get/put/putIfAbsent/delete see uncommitted writes and log each write to the task partition'), async (tt) => {
    const c = await open(backend, [kvSpec('counts')]);
    const s = c.stores.getStore<KeyValueStore<string, unknown>>('counts');
    tt.is(s.get('a'), undefined);
    s.put('a', 1);
    tt.is(s.get('a'), 1);
    tt.is(s.putIfAbsent('a', 2), 1);
    tt.is(s.putIfAbsent('b', 2), undefined);
    tt.is(s.get('b'), 2);
    tt.is(s.delete('a'), 1);
    tt.is(s.get('a'), undefined);
    tt.is(s.delete('zz'), undefined);
    s.put('c', null as unknown);
    tt.is(s.get('c'), undefined);
    const log = c.collector.records.map((r) => [r.topic, r.partition, r.key?.toString(), r.value === null ? null : r.value.toString()]);
    tt.deepEqual(log, [
      ['app-counts-changelog', 3, 'a', '1'],
      ['app-counts-changelog', 3, 'b', '2'],
      ['app-counts-changelog', 3, 'a', null],
      ['app-counts-changelog', 3, 'c', null],
    ]);
    tt.true(c.collector.records.every((r) => r.timestamp >= 1000));
    await c.done();
  });

  for (const caching of [false, true]) test(t(`kv: range, all and prefixScan merge ${caching ? 'cache and ' : ''}overlay over committed data in byte order`), async (tt) => {
    const c = await open(backend, [kvSpec('kv', { caching })]);
    let s = c.stores.getStore<KeyValueStore<string, unknown>>('kv');
    for (const k of ['b1', 'a2', 'c', 'a1', 'b2']) s.put(k, k.toUpperCase());
    c.stores.flush();
    await c.stores.commit(new Map([['kv', 4]]));
    s.put('a3', 'A3');
    s.delete('b1');
    s.put('a1', 'new');
    const keys = (it: Iterable<{ key: string; value: unknown }>) => [...it].map((e) => `${e.key}=${String(e.value)}`);
    tt.deepEqual(keys(s.all()), ['a1=new', 'a2=A2', 'a3=A3', 'b2=B2', 'c=C']);
    tt.deepEqual(keys(s.range('a2', 'b2')), ['a2=A2', 'a3=A3', 'b2=B2']);
    tt.deepEqual(keys(s.range(undefined, 'a2')), ['a1=new', 'a2=A2']);
    tt.deepEqual(keys(s.range('b')), ['b2=B2', 'c=C']);
    tt.deepEqual(keys(s.prefixScan('a', stringSerde)), ['a1=new', 'a2=A2', 'a3=A3']);
    tt.deepEqual(keys(s.prefixScan('b', stringSerde)), ['b2=B2']);
    tt.is(s.approximateNumEntries(), 5);
    // deleting while iterating is safe
    for (const e of s.all()) if (e.key.startsWith('a')) s.delete(e.key);
    tt.deepEqual(keys(s.all()), ['b2=B2', 'c=C']);
    c.stores.flush();
    await c.stores.commit(new Map([['kv', 10]]));
    s = (await c.reopen()).getStore('kv');
    if (backend === 'leveldb') {
      tt.deepEqual(keys(s.all()), ['b2=B2', 'c=C']);
      tt.is(s.approximateNumEntries(), 2);
      tt.is(c.stores.checkpoint('kv'), 10);
    } else {
      tt.deepEqual(keys(s.all()), []);
    }
    await c.done();
  });

  test(t('kv: abort drops the overlay and leaves committed state untouched'), async (tt) => {
    const c = await open(backend, [kvSpec('kv')]);
    const s = c.stores.getStore<KeyValueStore<string, unknown>>('kv');
    s.put('keep', 1);
    await c.stores.commit(new Map([['kv', 0]]));
    s.put('keep', 2);
    s.put('drop', 3);
    tt.true(c.stores.pendingBytes() > 0);
    c.stores.abort();
    tt.is(c.stores.pendingBytes(), 0);
    tt.is(s.get('keep'), 1);
    tt.is(s.get('drop'), undefined);
    tt.deepEqual([...s.all()].map((e) => e.key), ['keep']);
    tt.is(c.stores.checkpoint('kv'), 0);
    if (backend === 'leveldb') {
      const s2 = (await c.reopen()).getStore<KeyValueStore<string, unknown>>('kv');
      tt.is(s2.get('keep'), 1);
      tt.is(s2.get('drop'), undefined);
    }
    await c.done();
  });

  test(t('kv: the checkpoint never moves backwards; commit refuses unknown stores'), async (tt) => {
    const c = await open(backend, [kvSpec('kv')]);
    const s = c.stores.getStore<KeyValueStore<string, unknown>>('kv');
    s.put('a', 1);
    await c.stores.commit(new Map([['kv', 7]]));
    s.put('a', 2);
    await tt.throwsAsync(c.stores.commit(new Map([['kv', 6]])), { message: /below the checkpoint 7/ });
    tt.is(s.get('a'), 2, 'the overlay survives a refused commit');
    await tt.throwsAsync(c.stores.commit(new Map([['nope', 9]])), { message: /no store "nope"/ });
    await c.stores.commit(new Map([['kv', 8]]));
    tt.is(c.stores.checkpoint('kv'), 8);
    tt.throws(() => c.stores.getStore('missing'), { message: /has no store "missing".*kv/ });
    await c.done();
  });

  test(t('kv: writes made while a commit is in flight stay pending and are not lost'), async (tt) => {
    const c = await open(backend, [kvSpec('kv')]);
    const s = c.stores.getStore<KeyValueStore<string, unknown>>('kv');
    s.put('a', 1);
    s.put('b', 1);
    const p = c.stores.commit(new Map([['kv', 1]]));
    s.put('a', 2); // rewritten during the commit
    s.put('c', 3); // new during the commit
    await p;
    tt.is(s.get('a'), 2);
    tt.is(s.get('c'), 3);
    tt.true(c.stores.pendingBytes() > 0, 'the newer writes are still uncommitted');
    tt.is(s.approximateNumEntries(), 3);
    c.stores.abort();
    tt.is(s.get('a'), 1, 'abort returns to the committed value of the first commit');
    tt.is(s.get('c'), undefined);
    tt.is(s.approximateNumEntries(), 2);
    await c.done();
  });

  test(t('kv: the record cache collapses updates into one changelog record and one flush event per key'), async (tt) => {
    const c = await open(backend, [kvSpec('agg', { caching: true })]);
    const s = c.stores.getStore<KeyValueStore<string, unknown> & { setFlushListener: Function }>('agg');
    const events: unknown[] = [];
    tt.true(s.setFlushListener((k: string, nv: unknown, ov: unknown) => events.push([k, nv, ov])));
    s.put('x', 1);
    await c.stores.commit(new Map([['agg', 0]])).then(
      () => tt.fail('commit with a dirty cache must throw'),
      (e: Error) => tt.regex(e.message, /flush\(\)/),
    );
    c.stores.flush();
    await c.stores.commit(new Map([['agg', 0]]));
    c.collector.records = [];
    events.length = 0;
    for (let i = 2; i <= 5; i++) s.put('x', i);
    s.put('y', 'a');
    s.delete('y');
    s.put('z', 'z1');
    tt.is(s.get('x'), 5, 'reads see the cache');
    tt.deepEqual(c.collector.records, [], 'nothing logged before the flush');
    c.stores.flush();
    tt.deepEqual(
      c.collector.records.map((r) => [r.key?.toString(), r.value?.toString() ?? null]),
      [
        ['x', '5'],
        ['y', null],
        ['z', '"z1"'],
      ],
    );
    tt.deepEqual(events, [
      ['x', 5, 1],
      ['z', 'z1', undefined],
    ]);
    await c.stores.commit(new Map([['agg', 3]]));
    tt.is(s.get('x'), 5);
    await c.done();
  });

  test(t('kv: a full cache flushes early'), async (tt) => {
    const c = await open(backend, [kvSpec('agg', { caching: true })], 1000);
    const s = c.stores.getStore<KeyValueStore<string, unknown>>('agg');
    for (let i = 0; i < 50; i++) s.put(`k${i}`, 'v'.repeat(20));
    tt.true(c.collector.records.length > 0, 'evicted entries were logged');
    tt.true(c.collector.records.length < 50);
    c.stores.flush();
    tt.is(new Set(c.collector.records.map((r) => r.key?.toString())).size, 50);
    await c.done();
  });

  test(t('kv: caching off and logging off: no flush listener, no changelog'), async (tt) => {
    const c = await open(backend, [kvSpec('plain', { logging: false })]);
    const s = c.stores.getStore<KeyValueStore<string, unknown> & { setFlushListener: Function }>('plain');
    tt.false(s.setFlushListener(() => undefined));
    s.put('a', 1);
    tt.is(c.collector.records.length, 0);
    await c.stores.commit(new Map());
    tt.is(s.get('a'), 1);
    await c.done();
  });

  test(t('kv: point-only store (rangeScans: false) serves get/put and refuses range scans clearly'), async (tt) => {
    const c = await open(backend, [kvSpec('pts', { rangeScans: false })]);
    const s = c.stores.getStore<KeyValueStore<string, unknown>>('pts');
    s.put('a', 1);
    await c.stores.commit(new Map([['pts', 0]]));
    tt.is(s.get('a'), 1);
    tt.throws(() => [...s.all()], { message: /rangeScans: true/ });
    await c.done();
  });

  test(t('window: put/fetch/fetchRange/fetchAll in start order, key prefixes do not collide'), async (tt) => {
    const c = await open(backend, [windowSpec('w', { retentionMs: 10_000, windowSizeMs: 100 })]);
    const w = c.stores.getStore<WindowStore<string, unknown>>('w');
    w.put('a', 'a0', 0);
    w.put('a', 'a200', 200);
    w.put('ab', 'ab100', 100);
    w.put('a', 'a100', 100);
    await c.stores.commit(new Map([['w', 3]]));
    w.put('a', 'a300', 300);
    w.put('a', undefined, 0);
    tt.is(w.fetch('a', 100), 'a100');
    tt.is(w.fetch('a', 0), undefined);
    tt.deepEqual([...w.fetchRange('a', 0, 250)], [
      { key: 100, value: 'a100' },
      { key: 200, value: 'a200' },
    ]);
    tt.deepEqual([...w.fetchRange('a', 0, 10_000)].map((e) => e.key), [100, 200, 300]);
    tt.deepEqual([...w.fetchRange('ab', 0, 10_000)], [{ key: 100, value: 'ab100' }]);
    // fetchAll: no order across keys is promised (it is segment, then key bytes, then start)
    const all = [...w.fetchAll(100, 200)].map((e) => `${e.key.key}@${e.key.window.start}-${e.key.window.end}=${String(e.value)}`);
    tt.deepEqual(all.sort(), ['a@100-200=a100', 'a@200-300=a200', 'ab@100-200=ab100']);
    tt.is([...w.all()].length, 4);
    const log = c.collector.records.map((r) => r.key?.length);
    tt.true(log.every((n) => n === 1 + 8 || n === 2 + 8), 'changelog key = key bytes + 8-byte start');
    await c.done();
  });

  test(t('window: retention hides expired windows at once and drops whole segments at commit'), async (tt) => {
    const c = await open(backend, [windowSpec('w', { retentionMs: 1000 })]);
    const w = c.stores.getStore<WindowStore<string, unknown>>('w');
    for (let t0 = 0; t0 < 1000; t0 += 100) w.put('k', t0, t0);
    await c.stores.commit(new Map([['w', 9]]));
    tt.is([...w.fetchRange('k', 0, 5000)].length, 10);
    w.put('k', 2500, 2500); // stream time 2500: live windows start > 1500
    tt.deepEqual([...w.fetchRange('k', 0, 5000)].map((e) => e.key), [2500]);
    tt.is(w.fetch('k', 900), undefined);
    const logged = c.collector.records.length;
    w.put('k', 'late', 100); // already expired: dropped, not logged
    tt.is(c.collector.records.length, logged);
    tt.is(w.fetch('k', 100), undefined);
    await c.stores.commit(new Map([['w', 10]]));
    if (backend === 'leveldb') {
      const w2 = (await c.reopen()).getStore<WindowStore<string, unknown>>('w');
      tt.deepEqual([...w2.all()].map((e) => e.key.window.start), [2500]);
      w2.put('k', 'late', 900);
      tt.is(w2.fetch('k', 900), undefined, 'stream time survives a restart');
    }
    await c.done();
  });

  test(t('window and session stores: the cache collapses updates per window and reports Windowed keys'), async (tt) => {
    const c = await open(backend, [windowSpec('w', { caching: true, retentionMs: 10_000, windowSizeMs: 100 }), sessionSpec('s', { caching: true, retentionMs: 10_000 })]);
    const w = c.stores.getStore<WindowStore<string, unknown> & { setFlushListener: Function }>('w');
    const s = c.stores.getStore<SessionStore<string, unknown> & { setFlushListener: Function }>('s');
    const events: string[] = [];
    w.setFlushListener((k: { key: string; window: { start: number; end: number } }, nv: unknown, ov: unknown) =>
      events.push(`w ${k.key}@${k.window.start}-${k.window.end} ${String(ov)}->${String(nv)}`),
    );
    s.setFlushListener((k: { key: string; window: { start: number; end: number } }, nv: unknown, ov: unknown) =>
      events.push(`s ${k.key}@${k.window.start}-${k.window.end} ${String(ov)}->${String(nv)}`),
    );
    for (let i = 1; i <= 3; i++) w.put('k', i, 200);
    w.put('k', 9, 300);
    s.put({ key: 'u', window: { start: 5, end: 10 } }, 'a');
    s.put({ key: 'u', window: { start: 5, end: 10 } }, 'b');
    tt.deepEqual([...w.fetchRange('k', 0, 1000)].map((e) => e.value), [3, 9], 'reads see the cache');
    tt.is(c.collector.records.length, 0);
    c.stores.flush();
    tt.deepEqual(events.sort(), ['s u@5-10 undefined->b', 'w k@200-300 undefined->3', 'w k@300-400 undefined->9']);
    tt.is(c.collector.records.length, 3, 'one changelog record per window and session');
    await c.stores.commit(new Map([['w', 1], ['s', 2]]));
    events.length = 0;
    w.put('k', 4, 200);
    c.stores.flush();
    tt.deepEqual(events, ['w k@200-300 3->4']);
    await c.done();
  });

  test(t('session: put/findSessions/fetchSession/remove'), async (tt) => {
    const c = await open(backend, [sessionSpec('s', { retentionMs: 10_000 })]);
    const s = c.stores.getStore<SessionStore<string, unknown>>('s');
    const sess = (key: string, start: number, end: number) => ({ key, window: { start, end } });
    s.put(sess('u', 0, 100), 'u1');
    s.put(sess('u', 500, 700), 'u2');
    s.put(sess('uu', 50, 80), 'x');
    await c.stores.commit(new Map([['s', 2]]));
    s.put(sess('u', 1000, 1000), 'u3');
    const find = (k: string, e: number, st: number) => [...s.findSessions(k, e, st)].map((x) => [x.key.key, x.key.window.start, x.key.window.end, x.value]);
    tt.deepEqual(find('u', 0, 10_000), [
      ['u', 0, 100, 'u1'],
      ['u', 500, 700, 'u2'],
      ['u', 1000, 1000, 'u3'],
    ]);
    tt.deepEqual(find('u', 150, 600), [['u', 500, 700, 'u2']]);
    tt.deepEqual(find('u', 90, 40), [['u', 0, 100, 'u1']]);
    tt.deepEqual(find('uu', 0, 10_000), [['uu', 50, 80, 'x']]);
    tt.is(s.fetchSession('u', 500, 700), 'u2');
    s.remove(sess('u', 500, 700));
    tt.is(s.fetchSession('u', 500, 700), undefined);
    tt.deepEqual(find('u', 0, 10_000).map((x) => x[3]), ['u1', 'u3']);
    await c.done();
  });

  test(t('session: retention by session end'), async (tt) => {
    const c = await open(backend, [sessionSpec('s', { retentionMs: 1000 })]);
    const s = c.stores.getStore<SessionStore<string, unknown>>('s');
    s.put({ key: 'k', window: { start: 0, end: 100 } }, 'old');
    s.put({ key: 'k', window: { start: 1500, end: 2000 } }, 'new');
    tt.deepEqual([...s.findSessions('k', 0, 5000)].map((x) => x.value), ['new']);
    tt.is(s.fetchSession('k', 0, 100), undefined);
    await c.done();
  });

  test(t('restore: a fresh task rebuilds kv, window and session stores from the changelog'), async (tt) => {
    const specs = [kvSpec('kv'), windowSpec('w', { retentionMs: 10_000 }), sessionSpec('s', { retentionMs: 10_000 })];
    const changelog = new InMemoryChangelog();
    changelog.batchSize = 3;
    const a = await open(backend, specs);
    for (let round = 0; round < 3; round++) {
      const txn = changelog.beginTransaction();
      a.collector.target = txn;
      const kv = a.stores.getStore<KeyValueStore<string, unknown>>('kv');
      const w = a.stores.getStore<WindowStore<string, unknown>>('w');
      const s = a.stores.getStore<SessionStore<string, unknown>>('s');
      kv.put(`k${round}`, round);
      kv.put('shared', round);
      if (round === 2) kv.delete('k0');
      w.put('w', round, round * 100);
      s.put({ key: 's', window: { start: round, end: round * 10 } }, round);
      a.stores.flush();
      await a.stores.commit(offsetsByStore(APP, txn.commit()));
    }
    // an aborted transaction must not be restored
    const txn = changelog.beginTransaction();
    a.collector.target = txn;
    a.stores.getStore<KeyValueStore<string, unknown>>('kv').put('ghost', 1);
    txn.abort();
    a.stores.abort();

    const b = await open(backend, specs);
    const progress: string[] = [];
    await b.stores.restore(changelog, {
      onRestoreStart: (p) => progress.push(`start ${p.store} ${p.restored}/${p.total}`),
      onRestoreEnd: (p) => progress.push(`end ${p.store} ${p.restored}`),
    });
    const kv = b.stores.getStore<KeyValueStore<string, unknown>>('kv');
    tt.deepEqual([...kv.all()].map((e) => [e.key, e.value]), [
      ['k1', 1],
      ['k2', 2],
      ['shared', 2],
    ]);
    tt.deepEqual([...b.stores.getStore<WindowStore<string, unknown>>('w').fetchRange('w', 0, 1000)].map((e) => e.value), [0, 1, 2]);
    tt.deepEqual([...b.stores.getStore<SessionStore<string, unknown>>('s').findSessions('s', 0, 100)].map((e) => e.value), [0, 1, 2]);
    tt.deepEqual(progress.filter((p) => p.startsWith('end')), ['end kv 7', 'end w 3', 'end s 3']);
    tt.is(b.stores.checkpoint('kv'), a.stores.checkpoint('kv'));
    tt.is(b.collector.records.length, 0, 'restoring writes no changelog records');
    await a.done();
    await b.done();
  });
}

suite('memory');
suite('leveldb');

test('jsonSerde sanity (helper)', (t) => {
  t.deepEqual(jsonSerde.deserialize(jsonSerde.serialize({ a: 1 })), { a: 1 });
});

test('memory: openTaskStoresSync + commitSync work without awaiting; leveldb refuses both', async (t) => {
  const { openTaskStoresSync } = await import('./taskStores.js');
  const collector = new ListCollector();
  const base = { applicationId: APP, taskId: '1_0', partition: 0, specs: [kvSpec('kv', { caching: true })], collector };
  const stores = openTaskStoresSync({ ...base, backend: 'memory' });
  const kv = stores.getStore<KeyValueStore<string, unknown>>('kv');
  kv.put('a', 1);
  kv.put('a', 2);
  stores.flush();
  stores.commitSync(new Map());
  t.is(kv.get('a'), 2);
  t.is(stores.pendingBytes(), 0);
  t.is(collector.records.length, 1);
  t.throws(() => openTaskStoresSync({ ...base, backend: 'leveldb', stateDir: '/nonexistent' }), { message: /openTaskStoresSync supports only/ });
  await stores.close();
});
