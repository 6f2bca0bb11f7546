/**
 * Store shapes (issue 13 item 12): state written by a store of one shape is never restored into a
 * store of another. The local database records each store's shape; every changelog record carries
 * the `vltava.store.shape` fingerprint header.
 */
import test from 'ava';
import type { KeyValueStore, RecordCollector, StoreSpec, WindowStore } from '@vltava/dsl';
import { StateStoreError } from '@vltava/dsl';
import { timestampedSerde } from '@vltava/dsl';
import type { OpenTaskStoresOptions, TaskStores } from './api.js';
import { InMemoryChangelog } from './inMemoryChangelog.js';
import { LevelTaskDb } from './levelTaskDb.js';
import { shapeKey } from './storeStack.js';
import { SHAPE_HEADER, storeShapeOf } from './storeShape.js';
import { taskDirectory } from './stateDirectory.js';
import { META } from './taskDb.js';
import { openTaskStores, openTaskStoresSync } from './taskStores.js';
import { kvSpec, numberSerde, offsetsByStore, stringSerde, tempDir, windowSpec } from './testSupport.test.helper.js';
import { join } from 'node:path';

const APP = 'shapes';

function collector(): RecordCollector & { target?: RecordCollector } {
  const c: RecordCollector & { target?: RecordCollector } = { send: (r) => c.target?.send(r) };
  return c;
}

function opts(stateDir: string, spec: StoreSpec, col: RecordCollector): OpenTaskStoresOptions {
  return { applicationId: APP, taskId: '0_0', partition: 0, specs: [spec], collector: col, backend: 'leveldb', stateDir };
}

async function commitRound(stores: TaskStores, changelog: InMemoryChangelog, col: { target?: RecordCollector }, write: () => void): Promise<void> {
  const txn = changelog.beginTransaction();
  col.target = txn;
  write();
  stores.flush();
  await stores.commit(offsetsByStore(APP, txn.commit()));
}

/** A one-minute window store with counts of key a, committed to the changelog. */
async function writeWindows(dir: string, changelog: InMemoryChangelog, spec: StoreSpec): Promise<void> {
  const col = collector();
  const s = await openTaskStores(opts(dir, spec, col));
  await s.restore(changelog);
  const w = s.getStore<WindowStore<string, unknown>>(spec.name);
  await commitRound(s, changelog, col, () => {
    w.put('a', 3, 0);
    w.put('a', 5, 60_000);
  });
  await s.close();
}

const oneMinute = windowSpec('counts', { windowSizeMs: 60_000, retentionMs: 600_000 });
const twoMinutes = windowSpec('counts', { windowSizeMs: 120_000, retentionMs: 600_000 });

test('the shape: kind, window size, timestamped, serde names; retention only in the local layout', (t) => {
  const s = storeShapeOf(oneMinute);
  t.is(s.format, 'window windowSizeMs=60000 plain keySerde=string valueSerde=json');
  t.is(s.layout, 'window windowSizeMs=60000 plain keySerde=string valueSerde=json retentionMs=600000 segmentIntervalMs=300000');
  t.regex(s.fingerprint, /^[0-9a-f]{12}$/);
  t.not(storeShapeOf(twoMinutes).fingerprint, s.fingerprint);
  t.is(storeShapeOf({ ...oneMinute, retentionMs: 1_200_000 }).fingerprint, s.fingerprint, 'retention does not change the records');
  const ts = storeShapeOf({ ...kvSpec('t'), valueSerde: timestampedSerde(numberSerde), timestamped: true });
  t.is(ts.format, 'keyValue timestamped keySerde=string valueSerde=timestamped<int64>');
});

test('every changelog record carries the shape header', (t) => {
  const sent: Record<string, unknown>[] = [];
  const s = openTaskStoresSync({ applicationId: APP, taskId: '0_0', partition: 0, specs: [oneMinute], collector: { send: (r) => sent.push(r.headers ?? {}) }, backend: 'memory' });
  s.getStore<WindowStore<string, unknown>>('counts').put('a', 1, 0);
  s.getStore<WindowStore<string, unknown>>('counts').put('a', undefined, 0);
  t.is(sent.length, 2);
  for (const h of sent) t.deepEqual(h[SHAPE_HEADER], Buffer.from(storeShapeOf(oneMinute).fingerprint));
});

test('a window size changed under the same store name: the local state is refused at open, with what to do', async (t) => {
  const tmp = tempDir('shape-local');
  const changelog = new InMemoryChangelog();
  await writeWindows(tmp.dir, changelog, oneMinute);
  const err = await t.throwsAsync(openTaskStores(opts(tmp.dir, twoMinutes, collector())), { instanceOf: StateStoreError });
  t.regex(err!.message, /store "counts" of task 0_0/);
  t.regex(err!.message, /windowSizeMs=60000/);
  t.regex(err!.message, /windowSizeMs=120000/);
  t.regex(err!.message, /new name/);
  t.regex(err!.message, /vltava reset --application-id shapes/);
  t.regex(err!.message, /app\.cleanUp\(\)/);
  // the directory lock was released: the old shape still opens
  const s = await openTaskStores(opts(tmp.dir, oneMinute, collector()));
  await s.restore(changelog);
  t.is(s.getStore<WindowStore<string, unknown>>('counts').fetch('a', 60_000), 5);
  await s.close();
  tmp.cleanup();
});

test('a window size changed, on a new machine: the changelog is refused at restore', async (t) => {
  const tmp = tempDir('shape-changelog');
  const changelog = new InMemoryChangelog();
  await writeWindows(tmp.dir, changelog, oneMinute);
  const fresh = tempDir('shape-fresh');
  const s = await openTaskStores(opts(fresh.dir, twoMinutes, collector()));
  const err = await t.throwsAsync(s.restore(changelog), { instanceOf: StateStoreError });
  t.regex(err!.message, /record 0 of its changelog shapes-counts-changelog was written by a store of another shape/);
  t.regex(err!.message, new RegExp(`fingerprint ${storeShapeOf(oneMinute).fingerprint}`));
  t.regex(err!.message, /windowSizeMs=120000/);
  t.regex(err!.message, /vltava reset/);
  t.deepEqual([...s.getStore<WindowStore<string, unknown>>('counts').all()], [], 'nothing was restored');
  await s.close();
  // the memory backend (the test driver's) checks the same
  const m = openTaskStoresSync({ ...opts(fresh.dir, twoMinutes, collector()), backend: 'memory' });
  await t.throwsAsync(m.restore(changelog), { instanceOf: StateStoreError });
  tmp.cleanup();
  fresh.cleanup();
});

test('a plain store turned timestamped (the 8-byte timestamp prefix) is refused, locally and from the changelog', async (t) => {
  const tmp = tempDir('shape-ts');
  const changelog = new InMemoryChangelog();
  const plain = kvSpec('agg', { valueSerde: numberSerde });
  const timestamped = kvSpec('agg', { valueSerde: timestampedSerde(numberSerde), timestamped: true });
  const col = collector();
  const s = await openTaskStores(opts(tmp.dir, plain, col));
  await commitRound(s, changelog, col, () => s.getStore<KeyValueStore<string, number>>('agg').put('a', 7));
  await s.close();
  const local = await t.throwsAsync(openTaskStores(opts(tmp.dir, timestamped, collector())), { instanceOf: StateStoreError });
  t.regex(local!.message, /keyValue plain keySerde=string valueSerde=int64\); this topology declares keyValue timestamped/);
  const fresh = tempDir('shape-ts-fresh');
  const s2 = await openTaskStores(opts(fresh.dir, timestamped, collector()));
  await t.throwsAsync(s2.restore(changelog), { instanceOf: StateStoreError, message: /another shape/ });
  await s2.close();
  tmp.cleanup();
  fresh.cleanup();
});

test('a changelog written before store shapes were recorded (no header) is refused', async (t) => {
  const changelog = new InMemoryChangelog();
  // an old writer: the same records, without the header (as before the timestamp prefix, too)
  const txn = changelog.beginTransaction();
  txn.send({ topic: `${APP}-agg-changelog`, partition: 0, key: Buffer.from('a'), value: numberSerde.serialize(7), timestamp: 0 });
  txn.commit();
  const tmp = tempDir('shape-legacy');
  const s = await openTaskStores(opts(tmp.dir, kvSpec('agg', { valueSerde: timestampedSerde(numberSerde), timestamped: true }), collector()));
  const err = await t.throwsAsync(s.restore(changelog), { instanceOf: StateStoreError });
  t.regex(err!.message, /has no vltava\.store\.shape header: it was written by a Vltava version that did not record store shapes/);
  await s.close();
  tmp.cleanup();
});

test('a local database written before store shapes were recorded is refused; an empty store just records its shape', async (t) => {
  const tmp = tempDir('shape-legacy-local');
  const changelog = new InMemoryChangelog();
  await writeWindows(tmp.dir, changelog, oneMinute);
  const dbDir = join(taskDirectory(tmp.dir, APP, '0_0'), 'db');
  const { db } = await LevelTaskDb.open(dbDir);
  await db.write([{ prefix: META, key: shapeKey('counts'), value: null }]);
  await db.close();
  await t.throwsAsync(openTaskStores(opts(tmp.dir, oneMinute, collector())), { instanceOf: StateStoreError, message: /did not record store shapes/ });
  // a store added to an existing task database has no state yet: no error, and its shape is kept
  const other = windowSpec('other', { windowSizeMs: 1000, retentionMs: 10_000 });
  const s = await openTaskStores({ ...opts(tmp.dir, other, collector()), specs: [other] });
  await s.close();
  await t.throwsAsync(openTaskStores(opts(tmp.dir, { ...other, windowSizeMs: 2000 }, collector())), { instanceOf: StateStoreError, message: /another shape/ });
  tmp.cleanup();
});

test('only the retention changed: the store is rebuilt from its changelog, nothing refused', async (t) => {
  const tmp = tempDir('shape-retention');
  const changelog = new InMemoryChangelog();
  await writeWindows(tmp.dir, changelog, oneMinute);
  const longer = { ...oneMinute, retentionMs: 3_600_000 };
  const s = await openTaskStores(opts(tmp.dir, longer, collector()));
  t.is(s.checkpoint('counts'), undefined, 'wiped: the segment layout changed');
  await s.restore(changelog);
  const w = s.getStore<WindowStore<string, unknown>>('counts');
  t.deepEqual([...w.fetchRange('a', 0, 60_000)].map((e) => [e.key, e.value]), [[0, 3], [60_000, 5]]);
  await s.close();
  // reopened with the same retention: the layout is recorded, nothing is wiped
  const again = await openTaskStores(opts(tmp.dir, longer, collector()));
  t.not(again.checkpoint('counts'), undefined);
  await again.close();
  tmp.cleanup();
});

test('a serde swapped under the same store name is refused', async (t) => {
  const tmp = tempDir('shape-serde');
  const changelog = new InMemoryChangelog();
  const col = collector();
  const s = await openTaskStores(opts(tmp.dir, kvSpec('kv'), col));
  await commitRound(s, changelog, col, () => s.getStore<KeyValueStore<string, unknown>>('kv').put('a', { n: 1 }));
  await s.close();
  await t.throwsAsync(openTaskStores(opts(tmp.dir, kvSpec('kv', { valueSerde: stringSerde }), collector())), { instanceOf: StateStoreError, message: /valueSerde=json\); this topology declares keyValue plain keySerde=string valueSerde=string/ });
  tmp.cleanup();
});
