import test from 'ava';
import type { ChangelogRecord } from './api.js';
import { ChangelogTruncatedError } from './changelogTruncatedError.js';
import { InMemoryChangelog } from './inMemoryChangelog.js';

const T = 'app-s-changelog';
const rec = (k: string, v: string | null) => ({ topic: T, partition: 0, key: Buffer.from(k), value: v === null ? null : Buffer.from(v), timestamp: 1 });

async function readAll(c: InMemoryChangelog, from = 0, to?: number): Promise<ChangelogRecord[]> {
  const out: ChangelogRecord[] = [];
  await c.read(T, 0, from, to ?? (await c.endOffset(T, 0)), (b) => void out.push(...b));
  return out;
}

test('read_committed: open transactions hold back the end offset, aborted records are skipped, markers take an offset', async (t) => {
  const c = new InMemoryChangelog();
  const t1 = c.beginTransaction();
  t1.send(rec('a', '1'));
  t1.send(rec('b', '1'));
  t.deepEqual([...t1.commit()], [[T, 1]]); // a@0 b@1 marker@2
  const t2 = c.beginTransaction();
  t2.send(rec('c', '1')); // @3
  t.is(await c.endOffset(T, 0), 3, 'LSO: the first offset of the open transaction');
  const t3 = c.beginTransaction();
  t3.send(rec('d', '1')); // @4
  t3.abort(); // marker@5
  t.is(await c.endOffset(T, 0), 3);
  t2.commit(); // marker@6
  t.is(await c.endOffset(T, 0), 7);
  t.deepEqual((await readAll(c)).map((r) => `${r.key.toString()}@${r.offset}`), ['a@0', 'b@1', 'c@3']);
  t.deepEqual((await readAll(c, 2)).map((r) => r.offset), [3]);
  t.throws(() => t2.send(rec('x', '1')), { message: /committed: cannot send/ });
});

test('abortOpenTransactions fences a crashed producer', async (t) => {
  const c = new InMemoryChangelog();
  const t1 = c.beginTransaction();
  t1.send(rec('a', '1'));
  t.is(c.abortOpenTransactions(), 1);
  t.is(await c.endOffset(T, 0), 2);
  t.deepEqual(await readAll(c), []);
  t.throws(() => t1.commit(), { message: /already aborted/ });
});

test('truncate moves the beginning; reads below it throw ChangelogTruncatedError', async (t) => {
  const c = new InMemoryChangelog();
  for (let i = 0; i < 10; i++) c.append(T, 0, Buffer.from(`k${i}`), Buffer.from('v'));
  c.truncate(T, 0, 4);
  t.is(await c.beginningOffset(T, 0), 4);
  await t.throwsAsync(readAll(c, 3), { instanceOf: ChangelogTruncatedError, message: /starts at offset 4, but offset 3/ });
  t.deepEqual((await readAll(c, 4)).map((r) => r.offset), [4, 5, 6, 7, 8, 9]);
});

test('reads come in batches of batchSize and survive a JSON round trip', async (t) => {
  const c = new InMemoryChangelog();
  c.batchSize = 4;
  const tx = c.beginTransaction();
  for (let i = 0; i < 10; i++) tx.send(rec(`k${i}`, i % 3 === 0 ? null : `v${i}`));
  tx.commit();
  const open = c.beginTransaction();
  open.send(rec('pending', 'x'));
  const sizes: number[] = [];
  await c.read(T, 0, 0, await c.endOffset(T, 0), (b) => void sizes.push(b.length));
  t.deepEqual(sizes, [4, 4, 2]);
  const copy = InMemoryChangelog.fromJSON(JSON.parse(JSON.stringify(c)));
  t.deepEqual(await readAll(copy), await readAll(c));
  t.is(await copy.endOffset(T, 0), await c.endOffset(T, 0));
  t.is(copy.abortOpenTransactions(), 1);
  t.deepEqual(copy.committedRecords(T, 0).map((r) => r.value?.toString() ?? null), c.committedRecords(T, 0).map((r) => r.value?.toString() ?? null));
});
