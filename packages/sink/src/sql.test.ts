import test from 'ava';
import { upsertRows, insertRows, deleteRows, advanceOffset, offsetsTableDdl, readOffsets } from './sql.js';
import { sqliteAdapter } from './sqlite.js';
import { PostgresMissingError, postgresBinDir } from './testing/postgresServer.js';

test('sqlite: a versioned upsert never moves a row back; equal versions change nothing', async (t) => {
  const db = sqliteAdapter({ path: ':memory:' });
  await db.connect();
  await db.run('CREATE TABLE b (id TEXT PRIMARY KEY, balance INTEGER, v BIGINT)');
  const spec = { table: 'b', keyColumns: ['id'], versionColumn: 'v' };
  t.is(await upsertRows(db, db.dialect, spec, [{ id: 'a', balance: 10, v: 5 }, { id: 'b', balance: 1, v: 1 }]), 2);
  t.is(await upsertRows(db, db.dialect, spec, [{ id: 'a', balance: 7, v: 3 }]), 0, 'older version ignored');
  t.is(await upsertRows(db, db.dialect, spec, [{ id: 'a', balance: 10, v: 5 }]), 0, 'replay of the same version');
  t.is(await upsertRows(db, db.dialect, spec, [{ id: 'a', balance: 12, v: 9 }]), 1);
  t.deepEqual((await db.all('SELECT id, balance, v FROM b ORDER BY id')).map((r) => ({ ...r })), [
    { id: 'a', balance: 12, v: 9 },
    { id: 'b', balance: 1, v: 1 },
  ]);
  t.is(await deleteRows(db, db.dialect, spec, [{ id: 'b' }]), 1);
  t.is(await insertRows(db, db.dialect, 'b', [{ id: 'c', balance: 0, v: 0 }]), 1);
  await db.close();
});

test('sqlite: check-and-advance of the offset row fences a stale expected offset', async (t) => {
  const db = sqliteAdapter({ path: ':memory:' });
  await db.connect();
  await db.run(offsetsTableDdl('o'));
  t.true(await advanceOffset(db, db.dialect, 'o', 's', 't', 0, undefined, 10), 'first insert');
  t.false(await advanceOffset(db, db.dialect, 'o', 's', 't', 0, undefined, 20), 'a second "first" insert is fenced');
  t.false(await advanceOffset(db, db.dialect, 'o', 's', 't', 0, 5, 20), 'stale expected offset');
  t.true(await advanceOffset(db, db.dialect, 'o', 's', 't', 0, 10, 20));
  t.deepEqual([...(await readOffsets(db, db.dialect, 'o', 's', 't'))], [[0, 20]]);
  await db.close();
});

test('the PostgreSQL test helper fails (never skips) without server binaries, saying how to install them', (t) => {
  const e = t.throws(() => postgresBinDir({ root: '/nonexistent/postgresql', pgBin: undefined }));
  t.true(e instanceof PostgresMissingError);
  t.regex(e!.message, /apt-get install -y postgresql-15/);
  t.regex(e!.message, /PGURL=/);
});
