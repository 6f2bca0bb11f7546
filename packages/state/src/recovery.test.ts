/** LevelDB recovery policies, the state directory lock and cleanup, and the memory budget. */
import test from 'ava';
import type { KeyValueStore, RecordCollector } from '@vltava/dsl';
import { StateStoreError } from '@vltava/dsl';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { OpenTaskStoresOptions, RestoreProgress, TaskStores } from './api.js';
import { InMemoryChangelog } from './inMemoryChangelog.js';
import { MemoryBudget } from './memoryBudget.js';
import { cleanUnownedTaskDirs, LOCK_FILE, taskDirectory } from './stateDirectory.js';
import { openTaskStores } from './taskStores.js';
import { kvSpec, offsetsByStore, tempDir } from './testSupport.test.helper.js';

const APP = 'rapp';
const TOPIC = `${APP}-kv-changelog`;

function opts(stateDir: string, collector: RecordCollector, taskId = '0_0'): OpenTaskStoresOptions {
  return { applicationId: APP, taskId, partition: 0, specs: [kvSpec('kv')], collector, backend: 'leveldb', stateDir };
}

/** Writes `n` keys k0..k{n-1} = round through committed transactions, one key per transaction. */
async function writeCommitted(stores: TaskStores, changelog: InMemoryChangelog, collector: { target?: RecordCollector }, keys: string[], value: unknown) {
  const kv = stores.getStore<KeyValueStore<string, unknown>>('kv');
  for (const k of keys) {
    const txn = changelog.beginTransaction();
    collector.target = txn;
    kv.put(k, value);
    stores.flush();
    await stores.commit(offsetsByStore(APP, txn.commit()));
  }
}

function forwardingCollector(): RecordCollector & { target?: RecordCollector } {
  const c: RecordCollector & { target?: RecordCollector } = { send: (r) => c.target?.send(r) };
  return c;
}

const allOf = (s: TaskStores) => [...s.getStore<KeyValueStore<string, unknown>>('kv').all()].map((e) => `${e.key}=${String(e.value)}`);

test('a corrupt local database is recreated empty and fully restored', async (t) => {
  const tmp = tempDir('corrupt');
  const changelog = new InMemoryChangelog();
  const col = forwardingCollector();
  let s = await openTaskStores(opts(tmp.dir, col));
  await writeCommitted(s, changelog, col, ['a', 'b', 'c'], 1);
  await s.close();
  const dbDir = join(taskDirectory(tmp.dir, APP, '0_0'), 'db');
  const current = readdirSync(dbDir).find((f) => f === 'CURRENT');
  t.truthy(current);
  writeFileSync(join(dbDir, 'CURRENT'), 'garbage-without-newline');
  s = await openTaskStores(opts(tmp.dir, col));
  t.true(s.openedEmpty);
  t.is(s.checkpoint('kv'), undefined);
  const p: RestoreProgress[] = [];
  await s.restore(changelog, { onRestoreEnd: (x) => p.push(x) });
  t.deepEqual(allOf(s), ['a=1', 'b=1', 'c=1']);
  t.is(p[0]?.restored, 3);
  await s.close();
  tmp.cleanup();
});

test('a missing local database means a full restore', async (t) => {
  const tmp = tempDir('missing');
  const changelog = new InMemoryChangelog();
  const col = forwardingCollector();
  let s = await openTaskStores(opts(tmp.dir, col));
  await writeCommitted(s, changelog, col, ['a', 'b'], 2);
  await s.close();
  rmSync(join(taskDirectory(tmp.dir, APP, '0_0'), 'db'), { recursive: true });
  s = await openTaskStores(opts(tmp.dir, col));
  t.true(s.openedEmpty);
  await s.restore(changelog);
  t.deepEqual(allOf(s), ['a=2', 'b=2']);
  await s.close();
  tmp.cleanup();
});

test('truncated changelog (checkpoint below log start): the store is wiped and restored from the log start', async (t) => {
  const tmp = tempDir('trunc');
  const changelog = new InMemoryChangelog();
  const col = forwardingCollector();
  let s = await openTaskStores(opts(tmp.dir, col));
  await writeCommitted(s, changelog, col, ['old'], 1); // offsets 0 (record), 1 (marker)
  await s.close();
  // another owner wrote more, then retention deleted the head of the log
  const other = await openTaskStores(opts(join(tmp.dir, 'other'), col));
  await other.restore(changelog);
  await writeCommitted(other, changelog, col, ['x', 'y', 'z'], 2); // offsets 2..7
  await other.close();
  changelog.truncate(TOPIC, 0, 4); // checkpoint 0: records 1..3 are gone
  s = await openTaskStores(opts(tmp.dir, col));
  t.is(s.checkpoint('kv'), 0);
  const p: RestoreProgress[] = [];
  await s.restore(changelog, { onRestoreStart: (x) => p.push(x) });
  t.deepEqual(allOf(s), ['y=2', 'z=2'], 'local state was wiped (old is gone) and rebuilt from offset 4');
  t.is(p[0]?.total, 4);
  t.is(s.checkpoint('kv'), 6);
  await s.close();
  tmp.cleanup();
});

test('a checkpoint past the end of the changelog (topic recreated) wipes and restores', async (t) => {
  const tmp = tempDir('ahead');
  const changelog = new InMemoryChangelog();
  const col = forwardingCollector();
  let s = await openTaskStores(opts(tmp.dir, col));
  await writeCommitted(s, changelog, col, ['a', 'b', 'c'], 1);
  await s.close();
  const recreated = new InMemoryChangelog();
  recreated.append(TOPIC, 0, Buffer.from('n'), Buffer.from('9'));
  s = await openTaskStores(opts(tmp.dir, col));
  await s.restore(recreated);
  t.deepEqual(allOf(s), ['n=9']);
  t.is(s.checkpoint('kv'), 0);
  await s.close();
  tmp.cleanup();
});

test('restore writes in batches and reports progress per batch', async (t) => {
  const tmp = tempDir('progress');
  const changelog = new InMemoryChangelog();
  changelog.batchSize = 10;
  for (let i = 0; i < 35; i++) changelog.append(TOPIC, 0, Buffer.from(`k${i}`), Buffer.from(String(i)));
  const s = await openTaskStores(opts(tmp.dir, forwardingCollector()));
  const events: string[] = [];
  await s.restore(changelog, {
    onRestoreStart: (p) => events.push(`start ${p.taskId} ${p.store} ${p.restored}/${p.total}`),
    onBatchRestored: (p) => events.push(`batch ${p.restored}/${p.total}`),
    onRestoreEnd: (p) => events.push(`end ${p.restored}/${p.total}`),
  });
  t.deepEqual(events, ['start 0_0 kv 0/35', 'batch 10/35', 'batch 20/35', 'batch 30/35', 'batch 35/35', 'end 35/35']);
  t.is(s.checkpoint('kv'), 34);
  t.is(s.getStore<KeyValueStore<string, unknown>>('kv').approximateNumEntries(), 35);
  await s.close();
  tmp.cleanup();
});

test('a second open of the same task fails with the directory and the holder; close releases the lock', async (t) => {
  const tmp = tempDir('lock');
  const col = forwardingCollector();
  const s = await openTaskStores(opts(tmp.dir, col));
  const err = await t.throwsAsync(openTaskStores(opts(tmp.dir, col)), { instanceOf: StateStoreError });
  const dir = taskDirectory(tmp.dir, APP, '0_0');
  t.true(err?.message.includes(dir));
  t.true(err?.message.includes(`pid ${process.pid}`));
  t.true(err?.message.includes(hostname()));
  await s.close();
  const again = await openTaskStores(opts(tmp.dir, col));
  await again.close();
  tmp.cleanup();
});

test('a lock left by a dead process is taken over; one held on another host is refused', async (t) => {
  const tmp = tempDir('stale');
  const dir = taskDirectory(tmp.dir, APP, '0_0');
  mkdirSync(dir, { recursive: true });
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: Number(dead.stdout), host: hostname(), since: 'then' }));
  const s = await openTaskStores(opts(tmp.dir, forwardingCollector()));
  await s.close();
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: 'elsewhere.example', since: 'then' }));
  await t.throwsAsync(openTaskStores(opts(tmp.dir, forwardingCollector())), { message: /pid 1 on host elsewhere\.example/ });
  tmp.cleanup();
});

test('cleanUnownedTaskDirs removes only idle, unowned, unlocked task directories', async (t) => {
  const tmp = tempDir('clean');
  const col = forwardingCollector();
  for (const id of ['0_0', '0_1', '0_2']) await (await openTaskStores(opts(tmp.dir, col, id))).close();
  const live = await openTaskStores(opts(tmp.dir, col, '0_3'));
  const old = new Date(Date.now() - 3600_000);
  for (const id of ['0_0', '0_1', '0_3']) {
    const d = taskDirectory(tmp.dir, APP, id);
    for (const f of readdirSync(join(d, 'db'))) utimesSync(join(d, 'db', f), old, old);
    utimesSync(d, old, old);
  }
  const removed = await cleanUnownedTaskDirs({ stateDir: tmp.dir, applicationId: APP, ownedTaskIds: ['0_0'], delayMs: 600_000 });
  t.deepEqual(removed, [taskDirectory(tmp.dir, APP, '0_1')]);
  t.true(existsSync(taskDirectory(tmp.dir, APP, '0_0')), 'owned');
  t.true(existsSync(taskDirectory(tmp.dir, APP, '0_2')), 'recently used');
  t.true(existsSync(taskDirectory(tmp.dir, APP, '0_3')), 'locked by a live process');
  t.deepEqual(await cleanUnownedTaskDirs({ stateDir: join(tmp.dir, 'none'), applicationId: APP, ownedTaskIds: [] }), []);
  await live.close();
  tmp.cleanup();
});

test('MemoryBudget: overlays and caches of all tasks count against one cap; a commit frees them', async (t) => {
  const budget = new MemoryBudget(4096);
  const col = forwardingCollector();
  const base = { applicationId: APP, partition: 0, collector: col, backend: 'memory' as const };
  const a = await openTaskStores({ ...base, taskId: '0_0', specs: [kvSpec('kv')] });
  const b = await openTaskStores({ ...base, taskId: '0_1', specs: [kvSpec('kv', { caching: true })] });
  const unregister = budget.register(a);
  budget.register(b);
  t.false(budget.exceeded());
  for (let i = 0; i < 20; i++) a.getStore<KeyValueStore<string, unknown>>('kv').put(`k${i}`, 'x'.repeat(50));
  t.false(budget.exceeded());
  for (let i = 0; i < 20; i++) b.getStore<KeyValueStore<string, unknown>>('kv').put(`k${i}`, 'y'.repeat(50));
  t.true(budget.exceeded(), `used ${budget.usedBytes()}`);
  t.is(budget.largest()[0], budget.usedBytes() - a.pendingBytes() > a.pendingBytes() ? b : a);
  b.flush();
  await b.commit(new Map());
  t.false(budget.exceeded());
  t.is(b.pendingBytes(), 0);
  unregister();
  t.is(budget.usedBytes(), 0);
  t.throws(() => new MemoryBudget(0), { instanceOf: RangeError });
  await a.close();
  await b.close();
});

test('expired window segments are physically deleted from LevelDB in the commit batch', async (t) => {
  const { ClassicLevel } = await import('classic-level');
  const { windowSpec } = await import('./testSupport.test.helper.js');
  const tmp = tempDir('segments');
  const o = { ...opts(tmp.dir, forwardingCollector()), specs: [windowSpec('w', { retentionMs: 1000 })] };
  const s = await openTaskStores(o);
  const w = s.getStore<import('@vltava/dsl').WindowStore<string, unknown>>('w');
  for (let t0 = 0; t0 < 1000; t0 += 10) w.put('k', t0, t0);
  await s.commit(new Map([['w', 99]]));
  w.put('k', 'now', 5000); // stream time 5000: everything before 4001 expired
  await s.commit(new Map([['w', 100]]));
  await s.close();
  const db = new ClassicLevel<Buffer, Buffer>(join(taskDirectory(tmp.dir, APP, '0_0'), 'db'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const keys = await db.keys({ gte: Buffer.from('\x01w\x00', 'latin1'), lt: Buffer.from('\x01w\x01', 'latin1') }).all();
  await db.close();
  t.is(keys.length, 1, 'only the live window is left on disk');
  tmp.cleanup();
});

test('a clean close writes a key index snapshot that the next open uses instead of scanning LevelDB', async (t) => {
  const { ClassicLevel } = await import('classic-level');
  const tmp = tempDir('snapshot');
  const changelog = new InMemoryChangelog();
  const col = forwardingCollector();
  let s = await openTaskStores(opts(tmp.dir, col));
  await writeCommitted(s, changelog, col, ['a', 'b'], 1);
  await s.close();
  const dir = taskDirectory(tmp.dir, APP, '0_0');
  const snapFile = join(dir, 'index', `${Buffer.from('kv').toString('hex')}.keys`);
  t.true(existsSync(snapFile));
  // plant a key behind the index's back: only a LevelDB scan would see it in range scans
  const db = new ClassicLevel<Buffer, Buffer>(join(dir, 'db'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  await db.put(Buffer.from('\x01kv\x00planted', 'latin1'), Buffer.from('7'));
  await db.close();
  s = await openTaskStores(opts(tmp.dir, col));
  await s.restore(changelog);
  t.deepEqual(allOf(s), ['a=1', 'b=1'], 'index from the snapshot');
  t.is(s.getStore<KeyValueStore<string, unknown>>('kv').get('planted'), 7, 'point reads go to LevelDB');
  await s.close();
  rmSync(snapFile);
  s = await openTaskStores(opts(tmp.dir, col));
  t.deepEqual(allOf(s), ['a=1', 'b=1', 'planted=7'], 'without a snapshot the index is scanned from LevelDB');
  await s.close();
  t.true(existsSync(snapFile), 'a close after a scan writes the snapshot again, even without commits');
  tmp.cleanup();
});

test('a snapshot from another database incarnation or ahead of the checkpoint is ignored', async (t) => {
  const tmp = tempDir('snapshot-bad');
  const changelog = new InMemoryChangelog();
  const col = forwardingCollector();
  let s = await openTaskStores(opts(tmp.dir, col));
  await writeCommitted(s, changelog, col, ['a', 'b'], 1);
  await s.close();
  const dir = taskDirectory(tmp.dir, APP, '0_0');
  const snapFile = join(dir, 'index', `${Buffer.from('kv').toString('hex')}.keys`);
  const { readFileSync } = await import('node:fs');
  const good = readFileSync(snapFile, 'latin1');
  // same db, but claims a later checkpoint and lists a key that does not exist
  const [magic, id] = good.split(' ') as [string, string];
  writeFileSync(snapFile, Buffer.from(`${magic} ${id} 999 1\n\x00\x00\x00\x05ghost`, 'latin1'));
  s = await openTaskStores(opts(tmp.dir, col));
  t.deepEqual(allOf(s), ['a=1', 'b=1']);
  await s.close();
  writeFileSync(snapFile, Buffer.from(`${magic} otherdb 0 1\n\x00\x00\x00\x05ghost`, 'latin1'));
  s = await openTaskStores(opts(tmp.dir, col));
  t.deepEqual(allOf(s), ['a=1', 'b=1']);
  await s.close();
  writeFileSync(snapFile, 'garbage');
  s = await openTaskStores(opts(tmp.dir, col));
  t.deepEqual(allOf(s), ['a=1', 'b=1']);
  await s.close();
  tmp.cleanup();
});

test('abort() during an in-flight commit is refused; close() lets the commit finish', async (t) => {
  const tmp = tempDir('inflight');
  const col = forwardingCollector();
  let s = await openTaskStores(opts(tmp.dir, col));
  s.getStore<KeyValueStore<string, unknown>>('kv').put('a', 1);
  const p = s.commit(new Map([['kv', 0]]));
  t.throws(() => s.abort(), { message: /await commit\(\) first/ });
  const closing = s.close();
  await p;
  await closing;
  s = await openTaskStores(opts(tmp.dir, col));
  t.deepEqual(allOf(s), ['a=1']);
  t.is(s.checkpoint('kv'), 0);
  await s.close();
  tmp.cleanup();
});

test('a long restore (key index updated once at the end) gives the same index as the data', async (t) => {
  const tmp = tempDir('bulk-restore');
  const changelog = new InMemoryChangelog();
  const model = new Map<string, string>();
  for (let i = 0; i < 30_000; i++) {
    const k = `k${(i * 7919) % 9000}`;
    const v = i % 11 === 0 ? null : String(i);
    changelog.append(TOPIC, 0, Buffer.from(k), v === null ? null : Buffer.from(v));
    if (v === null) model.delete(k);
    else model.set(k, v);
  }
  const s = await openTaskStores(opts(tmp.dir, forwardingCollector()));
  await s.restore(changelog);
  const kv = s.getStore<KeyValueStore<string, unknown>>('kv');
  const expected = [...model].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}=${v}`);
  t.deepEqual(allOf(s), expected);
  t.is(kv.approximateNumEntries(), model.size);
  await s.close();
  tmp.cleanup();
});

test('a stateless task (no stores) opens no directory, lock or database', async (t) => {
  const tmp = tempDir('stateless');
  const s = await openTaskStores({ ...opts(tmp.dir, forwardingCollector()), specs: [] });
  t.false(existsSync(join(tmp.dir, APP)));
  s.flush();
  await s.commit(new Map());
  await s.close();
  tmp.cleanup();
});
