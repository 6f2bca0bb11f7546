import test from 'ava';
import { mergeRange } from './bytesLayer.js';
import { SortedKeys } from './sortedKeys.js';
import { decodeTs, encodeTs } from './timeKey.js';

/** A tiny deterministic PRNG so failures are reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const byteString = (r: () => number): string => {
  const n = 1 + Math.floor(r() * 4);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(Math.floor(r() * 256));
  return s;
};

test('SortedKeys matches a sorted-array model under random adds, deletes and ranges (chunk splits included)', (t) => {
  const r = rng(42);
  const keys = new SortedKeys();
  const model = new Set<string>();
  for (let step = 0; step < 20_000; step++) {
    const k = byteString(r);
    if (r() < 0.7) {
      t.is(keys.add(k), !model.has(k));
      model.add(k);
    } else {
      t.is(keys.delete(k), model.delete(k));
    }
    if (step % 2000 === 0) {
      const a = byteString(r);
      const b = byteString(r);
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      const sorted = [...model].sort();
      t.deepEqual([...keys.range(lo, hi)], sorted.filter((x) => x >= lo && x <= hi));
      t.deepEqual([...keys.range()], sorted);
      t.is(keys.size, model.size);
      t.is(keys.last(), sorted[sorted.length - 1]);
    }
  }
  t.true([...model].every((k) => keys.has(k)));
  t.true(model.size > 1500, 'enough keys for several chunks');
  t.false(keys.has('\u00ff\u00ff\u00ff\u00ff\u00ff'));
});

test('latin1 byte strings compare in unsigned byte order', (t) => {
  const bufs = [Buffer.from([0x00]), Buffer.from([0x7f]), Buffer.from([0x80]), Buffer.from([0xff]), Buffer.from([0x80, 0x00]), Buffer.from([])];
  const bySort = [...bufs].sort(Buffer.compare).map((b) => b.toString('latin1'));
  const byString = bufs.map((b) => b.toString('latin1')).sort();
  t.deepEqual(byString, bySort);
});

test('SortedKeys range iterators re-seek after writes made while iterating', (t) => {
  const keys = new SortedKeys();
  for (let i = 0; i < 3000; i++) keys.add(`k${String(i).padStart(5, '0')}`);
  const seen: string[] = [];
  for (const k of keys.range()) {
    seen.push(k);
    keys.delete(k); // delete what we just saw
    if (k === 'k00010') keys.add('k00010x'); // insert just after the cursor: must be seen
    if (k === 'k00020') keys.add('a-before'); // insert before the cursor: must not be seen
  }
  t.is(seen.length, 3001);
  t.true(seen.includes('k00010x'));
  t.false(seen.includes('a-before'));
  t.deepEqual([...keys.range()], ['a-before']);
});

test('bulk appendSorted then random access', (t) => {
  const keys = new SortedKeys();
  const all = Array.from({ length: 5000 }, (_, i) => `x${String(i).padStart(6, '0')}`);
  keys.appendSorted(all.slice(0, 2500));
  keys.appendSorted(all.slice(2500));
  t.is(keys.size, 5000);
  t.true(keys.has('x004999'));
  t.true(keys.add('x0010005'));
  t.deepEqual([...keys.range('x001000', 'x001001')], ['x001000', 'x0010005', 'x001001']);
});

test('mergeRange: upper layer wins, hides deletes, keeps order', (t) => {
  const lower: [string, Buffer][] = ['a', 'c', 'e', 'g'].map((k) => [k, Buffer.from(`L${k}`)]);
  const upper = new Map<string, Buffer | null>([
    ['b', Buffer.from('Ub')],
    ['c', null],
    ['e', Buffer.from('Ue')],
    ['h', Buffer.from('Uh')],
  ]);
  const out = [...mergeRange([...upper.keys()].sort(), (k) => upper.get(k) ?? null, lower)].map(([k, v]) => `${k}=${v.toString()}`);
  t.deepEqual(out, ['a=La', 'b=Ub', 'e=Ue', 'g=Lg', 'h=Uh']);
  t.deepEqual([...mergeRange([], () => null, lower)].length, 4);
  t.deepEqual([...mergeRange(['x'], () => null, [])], []);
});

test('timestamps encode to fixed-width keys whose byte order is numeric order, negatives included', (t) => {
  const values = [-(2 ** 52), -86_400_000, -1, 0, 1, 255, 256, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 1_700_000_000_000, Number.MAX_SAFE_INTEGER];
  for (const v of values) {
    const e = encodeTs(v);
    t.is(e.length, 8);
    t.is(decodeTs(e, 0), v);
    t.is(decodeTs(`pre${e}`, 3), v);
  }
  const encoded = values.map(encodeTs);
  t.deepEqual([...encoded].sort(), encoded);
});

test('packed chunks from a snapshot behave like unpacked ones, and untouched chunks are written back verbatim', async (t) => {
  const { writeIndexSnapshot, readIndexSnapshot } = await import('./indexSnapshot.js');
  const { tempDir } = await import('./testSupport.test.helper.js');
  const tmp = tempDir('packed');
  const r = rng(7);
  const original = new SortedKeys();
  const model = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const k = byteString(r);
    original.add(k);
    model.add(k);
  }
  const path = `${tmp.dir}/s.keys`;
  await writeIndexSnapshot(path, 'db1', 41, original.snapshotChunks());
  const snap = await readIndexSnapshot(path);
  t.truthy(snap);
  t.is(snap?.checkpoint, 41);
  const keys = new SortedKeys();
  keys.appendPacked(snap!.chunks);
  t.is(keys.size, model.size);
  t.true(snap!.chunks.length > 3, 'several packed chunks');
  // rewrite before touching anything: byte-identical
  await writeIndexSnapshot(`${path}2`, 'db1', 41, keys.snapshotChunks());
  const { readFileSync } = await import('node:fs');
  t.deepEqual(readFileSync(`${path}2`), readFileSync(path));
  // a bulk add into packed chunks: only the touched ones get unpacked
  const bulk = Array.from({ length: 300 }, () => byteString(r)).sort();
  keys.addSorted(bulk);
  for (const k of bulk) model.add(k);
  t.is(keys.size, model.size);
  // random operations against the model
  for (let step = 0; step < 5000; step++) {
    const k = byteString(r);
    if (r() < 0.5) {
      t.is(keys.add(k), !model.has(k));
      model.add(k);
    } else {
      t.is(keys.delete(k), model.delete(k));
    }
    if (step % 1000 === 0) {
      const lo = byteString(r);
      t.deepEqual([...keys.range(lo)], [...model].sort().filter((x) => x >= lo));
    }
  }
  t.deepEqual([...keys.range()], [...model].sort());
  // a damaged file is refused (checksum), a truncated one too
  const { writeFileSync } = await import('node:fs');
  const bytes = readFileSync(path);
  bytes[bytes.length - 3] = (bytes[bytes.length - 3] ?? 0) ^ 1;
  writeFileSync(`${path}3`, bytes);
  t.is(await readIndexSnapshot(`${path}3`), undefined);
  writeFileSync(`${path}4`, readFileSync(path).subarray(0, -5));
  t.is(await readIndexSnapshot(`${path}4`), undefined);
  tmp.cleanup();
});

test('addSorted (bulk) matches the model, over packed and unpacked chunks, with splits', async (t) => {
  const r = rng(99);
  const keys = new SortedKeys();
  const model = new Set<string>();
  for (let round = 0; round < 60; round++) {
    const batch: string[] = [];
    const n = round % 7 === 0 ? 2000 : Math.floor(r() * 50);
    for (let i = 0; i < n; i++) batch.push(r() < 0.3 && model.size > 0 ? ([...model][Math.floor(r() * model.size)] as string) : byteString(r));
    batch.sort();
    keys.addSorted(batch);
    for (const k of batch) model.add(k);
    for (let i = 0; i < 20; i++) {
      const k = byteString(r);
      t.is(keys.delete(k), model.delete(k));
    }
    t.is(keys.size, model.size);
  }
  t.deepEqual([...keys.range()], [...model].sort());
  t.true([...model].every((k) => keys.has(k)));
  t.true(model.size > 5000);
});
