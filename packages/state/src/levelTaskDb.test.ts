/**
 * The LevelDB read cache (issue 14): committed values read or written stay in memory, so a hot key is
 * not read from LevelDB after every commit. It must only ever hold what LevelDB holds, and stay
 * within its budget.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { LevelTaskDb } from './levelTaskDb.js';

const P = 'p\x00';
const b = (s: string): Buffer => Buffer.from(s);

/** Counts the reads that reach LevelDB (classic-level's getSync). */
function countReads(db: LevelTaskDb): { readonly n: number } {
  const level = (db as unknown as { db: { getSync: (k: Buffer) => Buffer | undefined } }).db;
  const original = level.getSync.bind(level);
  const counter = { n: 0 };
  level.getSync = (k) => {
    counter.n++;
    return original(k);
  };
  return counter;
}

async function open(t: { teardown(fn: () => unknown): void }, readCacheBytes: number): Promise<LevelTaskDb> {
  const dir = mkdtempSync(join(tmpdir(), 'vltava-readcache-'));
  const { db } = await LevelTaskDb.open(join(dir, 'db'), { readCacheBytes });
  t.teardown(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return db;
}

test('hot keys are read from LevelDB once; writes, deletes and absent keys are served from the cache and always equal the database', async (t) => {
  const db = await open(t, 1 << 20);
  const reads = countReads(db);
  await db.write([{ prefix: P, key: 'a', value: b('1') }]);
  const read = db.reader(P);
  for (let i = 0; i < 100; i++) t.deepEqual(read('a'), b('1'));
  t.is(reads.n, 0, 'a key just written is cached (write-through)');
  t.is(read('z'), undefined);
  t.is(read('z'), undefined);
  t.is(reads.n, 1, 'an absent key is read once');
  await db.write([{ prefix: P, key: 'a', value: b('2') }, { prefix: P, key: 'z', value: b('26') }]);
  t.deepEqual(read('a'), b('2'));
  t.deepEqual(db.get(P, 'z'), b('26'));
  await db.write([{ prefix: P, key: 'a', value: null }]);
  t.is(read('a'), undefined);
  t.is(reads.n, 1);
  // the database agrees with every cached answer
  const fresh = (db as unknown as { db: { getSync: (k: Buffer) => Buffer | undefined } }).db;
  t.is(fresh.getSync(Buffer.from(`${P}a`, 'latin1')), undefined);
  t.deepEqual(fresh.getSync(Buffer.from(`${P}z`, 'latin1')), b('26'));
});

test('the cache stays within its budget (dropped whole when it would outgrow it) and answers stay right', async (t) => {
  const budget = 20_000;
  const db = await open(t, budget);
  const value = Buffer.alloc(100, 7);
  for (let i = 0; i < 1_000; i += 50) {
    await db.write(Array.from({ length: 50 }, (_, j) => ({ prefix: P, key: `k${i + j}`, value })));
    t.true(db.readCacheSize <= budget, `${db.readCacheSize} bytes cached, budget ${budget}`);
  }
  for (let i = 0; i < 1_000; i++) {
    t.deepEqual(db.get(P, `k${i}`), value);
    t.true(db.readCacheSize <= budget);
  }
});

test('readCacheBytes 0 keeps no cache: every read goes to LevelDB', async (t) => {
  const db = await open(t, 0);
  const reads = countReads(db);
  await db.write([{ prefix: P, key: 'a', value: b('1') }]);
  t.deepEqual(db.get(P, 'a'), b('1'));
  t.deepEqual(db.reader(P)('a'), b('1'));
  t.is(reads.n, 2);
  t.is(db.readCacheSize, 0);
});

test('a failed write leaves nothing cached that the database does not hold', async (t) => {
  const db = await open(t, 1 << 20);
  await db.write([{ prefix: P, key: 'a', value: b('1') }]);
  t.deepEqual(db.get(P, 'a'), b('1'));
  const level = (db as unknown as { db: { batch: () => unknown } }).db;
  const batch = level.batch.bind(level);
  level.batch = () => Object.assign(batch() as object, { write: () => Promise.reject(new Error('disk full')) });
  await t.throwsAsync(db.write([{ prefix: P, key: 'a', value: b('2') }]), { message: 'disk full' });
  t.is(db.readCacheSize, 0);
  level.batch = batch;
  t.deepEqual(db.get(P, 'a'), b('1'), 'the old value, read again from LevelDB');
});

test('a written value that is a slice of a shared slab is cached as its own copy (an entry must not pin the slab)', async (t) => {
  const db = await open(t, 1 << 20);
  const slab = Buffer.alloc(8192, 1);
  const slice = slab.subarray(100, 116);
  await db.write([{ prefix: P, key: 'a', value: slice }]);
  const cached = db.get(P, 'a')!;
  t.deepEqual(cached, slice);
  t.not(cached.buffer, slab.buffer, 'the cache holds a copy, not a view of the 8 KiB slab');
  t.is(cached.buffer.byteLength, 16);
  const own = Buffer.allocUnsafeSlow(4).fill(2);
  await db.write([{ prefix: P, key: 'b', value: own }]);
  t.is(db.get(P, 'b'), own, 'a buffer that owns its memory is kept as it is');
});
