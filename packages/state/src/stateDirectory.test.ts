import { mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { StateStoreError } from '@vltava/dsl';
import { LOCK_FILE, lockTaskDir } from './stateDirectory.js';

const dir = (): string => mkdtempSync(join(tmpdir(), 'vltava-lock-'));

test('a lock left by a dead process that had our pid (a container restarted: pid 1 again, same hostname) is taken over', async (t) => {
  const d = dir();
  writeFileSync(join(d, LOCK_FILE), JSON.stringify({ pid: process.pid, host: hostname(), since: '2026-01-01T00:00:00.000Z', token: 'an-earlier-incarnation' }));
  const lock = await lockTaskDir(d);
  t.is(lock.dir, d);
  await lock.release();
});

test('a lock this process holds is refused to a second claim in the same process, with a message that says so', async (t) => {
  const d = dir();
  const lock = await lockTaskDir(d);
  const err = await t.throwsAsync(lockTaskDir(d), { instanceOf: StateStoreError });
  t.regex(err!.message, /locked by this process/);
  await lock.release();
  const again = await lockTaskDir(d);
  await again.release();
});

test('a lock held by another live process on this host is refused', async (t) => {
  const d = dir();
  writeFileSync(join(d, LOCK_FILE), JSON.stringify({ pid: process.ppid, host: hostname(), since: '2026-01-01T00:00:00.000Z', token: 'parent' }));
  const err = await t.throwsAsync(lockTaskDir(d), { instanceOf: StateStoreError });
  t.regex(err!.message, new RegExp(`locked by pid ${process.ppid}`));
});
