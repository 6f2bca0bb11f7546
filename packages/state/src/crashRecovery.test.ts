/**
 * Fault injection at each step of the commit protocol, with real crashes: a child process runs the
 * task and SIGKILLs itself at the step; then a new owner opens the same LevelDB directory, fences
 * the old producer (aborts its open transaction), restores, and must hold exactly the committed state,
 * having replayed only the tail after its checkpoint.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CollectedRecord, RecordCollector } from '@vltava/dsl';
import type { RestoreProgress, TaskStores } from './api.js';
import { InMemoryChangelog } from './inMemoryChangelog.js';
import { openTaskStores } from './taskStores.js';
import { apply, CRASH_APP, CRASH_TASK, crashSpecs, dump, model, roundOps } from './crashWorkload.test.helper.js';
import { offsetsByStore, tempDir } from './testSupport.test.helper.js';

const child = fileURLToPath(new URL('./crashChild.test.helper.js', import.meta.url));

function runChild(stateDir: string, file: string, first: number, last: number, crashPoint: string, ...extra: string[]) {
  const r = spawnSync(process.execPath, [child, stateDir, file, String(first), String(last), crashPoint, ...extra], { encoding: 'utf8' });
  return { signal: r.signal, status: r.status, stderr: r.stderr };
}

/** A new owner: fences the old producer (aborts its open transaction), opens the dir, restores. */
async function restart(
  stateDir: string,
  file: string,
  collector: RecordCollector = { send: () => undefined },
): Promise<{ stores: TaskStores; changelog: InMemoryChangelog; restored: Map<string, RestoreProgress> }> {
  const changelog = InMemoryChangelog.fromJSON(JSON.parse(readFileSync(file, 'utf8')));
  changelog.abortOpenTransactions();
  const stores = await openTaskStores({ applicationId: CRASH_APP, taskId: CRASH_TASK, partition: 1, specs: crashSpecs, collector, backend: 'leveldb', stateDir });
  const restored = new Map<string, RestoreProgress>();
  await stores.restore(changelog, { onRestoreEnd: (p) => restored.set(p.store, p) });
  return { stores, changelog, restored };
}

const totalRestored = (m: Map<string, RestoreProgress>) => [...m.values()].reduce((n, p) => n + p.restored, 0);

const points = [
  { point: 'beforeSend', lastCommitted: false, tail: false },
  { point: 'afterSend', lastCommitted: false, tail: false },
  { point: 'afterKafkaCommit', lastCommitted: true, tail: true },
  { point: 'afterBatch', lastCommitted: true, tail: false },
] as const;

for (const { point, lastCommitted, tail } of points) {
  test(`crash ${point}: restart converges to exactly the committed state, replaying only the tail`, async (t) => {
    const tmp = tempDir(`crash-${point}`);
    const file = join(tmp.dir, 'changelog.json');
    const stateDir = join(tmp.dir, 'state');
    try {
      // rounds 1..5 commit normally; the process dies in round 6 at `point`
      const r = runChild(stateDir, file, 1, 6, point);
      t.is(r.signal, 'SIGKILL', r.stderr);
      const expected = model(lastCommitted ? [1, 2, 3, 4, 5, 6] : [1, 2, 3, 4, 5]);
      const { stores, restored } = await restart(stateDir, file);
      t.false(stores.openedEmpty, 'the local database survived the crash');
      t.deepEqual(dump(stores), expected);
      // Only the tail is replayed: after afterKafkaCommit the 6th round's records, otherwise nothing.
      const lastRoundRecords = new Set(roundOps(6).map((o) => `${o.store}/${o.key}/${'start' in o ? o.start : ''}/${'end' in o ? o.end : ''}`)).size;
      if (tail) {
        t.true(totalRestored(restored) > 0);
        t.true(totalRestored(restored) <= lastRoundRecords, `restored ${totalRestored(restored)} > one round (${lastRoundRecords})`);
      } else {
        t.is(totalRestored(restored), 0);
      }
      await stores.close();
      // The new owner carries on: one more round, commit, clean close, reopen.
      const buffer: CollectedRecord[] = [];
      const collector: RecordCollector = { send: (rec) => buffer.push(rec) };
      const again = await restart(stateDir, file, collector);
      const s2 = again.stores;
      apply(s2, roundOps(7));
      s2.flush();
      const txn = again.changelog.beginTransaction();
      for (const rec of buffer.splice(0)) txn.send(rec);
      await s2.commit(offsetsByStore(CRASH_APP, txn.commit()));
      await s2.close();
      const s3 = await openTaskStores({ applicationId: CRASH_APP, taskId: CRASH_TASK, partition: 1, specs: crashSpecs, collector, backend: 'leveldb', stateDir });
      const p3 = new Map<string, RestoreProgress>();
      await s3.restore(again.changelog, { onRestoreEnd: (p) => p3.set(p.store, p) });
      t.deepEqual(dump(s3), model(lastCommitted ? [1, 2, 3, 4, 5, 6, 7] : [1, 2, 3, 4, 5, 7]));
      t.is(totalRestored(p3), 0, 'after a clean commit nothing is replayed');
      // and a full restore from the changelog into an empty directory gives the same state
      const fresh = join(tmp.dir, 'fresh');
      const s4 = await openTaskStores({ applicationId: CRASH_APP, taskId: CRASH_TASK, partition: 1, specs: crashSpecs, collector, backend: 'leveldb', stateDir: fresh });
      await s4.restore(again.changelog);
      t.true(s4.openedEmpty);
      t.deepEqual(dump(s4), dump(s3));
      await s3.close();
      await s4.close();
    } finally {
      tmp.cleanup();
    }
  });
}

test('repeated crashes at every step in turn still converge', async (t) => {
  const tmp = tempDir('crash-repeat');
  const file = join(tmp.dir, 'changelog.json');
  const stateDir = join(tmp.dir, 'state');
  try {
    const committed: number[] = [];
    let round = 1;
    for (const { point, lastCommitted } of [...points, ...points]) {
      const r = runChild(stateDir, file, round, round + 1, point);
      t.is(r.signal, 'SIGKILL', r.stderr);
      committed.push(round);
      if (lastCommitted) committed.push(round + 1);
      round += 2;
    }
    const { stores } = await restart(stateDir, file);
    t.deepEqual(dump(stores), model(committed));
    await stores.close();
  } finally {
    tmp.cleanup();
  }
});

for (const point of ['afterKafkaCommit', 'afterBatch'] as const) {
  test(`crash ${point} with a stale key index snapshot: the index catches up from the changelog and ranges are exact`, async (t) => {
    const tmp = tempDir(`crash-snap-${point}`);
    const file = join(tmp.dir, 'changelog.json');
    const stateDir = join(tmp.dir, 'state');
    try {
      // clean close after round 3 (snapshot at round 3), rounds 4-5 commit, crash in round 6
      const r = runChild(stateDir, file, 1, 6, point, '3', String(1e9));
      t.is(r.signal, 'SIGKILL', r.stderr);
      const snapDir = join(stateDir, CRASH_APP, CRASH_TASK, 'index');
      t.true(readdirSync(snapDir).filter((f) => f.endsWith('.keys')).length >= 3, 'snapshots of the range-capable stores exist');
      const { stores, restored } = await restart(stateDir, file);
      t.deepEqual(dump(stores), model([1, 2, 3, 4, 5, 6]));
      if (point === 'afterBatch') t.is(totalRestored(restored), 0, 'the catch-up reconciles the index but replays nothing');
      await stores.close();
    } finally {
      tmp.cleanup();
    }
  });
}

test('crash while key index snapshots are written after every commit: restart is exact whatever the snapshot state', async (t) => {
  const tmp = tempDir('crash-snap-every');
  const file = join(tmp.dir, 'changelog.json');
  const stateDir = join(tmp.dir, 'state');
  try {
    const committed: number[] = [];
    let round = 1;
    for (const { point, lastCommitted } of points) {
      const r = runChild(stateDir, file, round, round + 2, point, '0', '0');
      t.is(r.signal, 'SIGKILL', r.stderr);
      committed.push(round, round + 1);
      if (lastCommitted) committed.push(round + 2);
      round += 3;
      const { stores } = await restart(stateDir, file);
      t.deepEqual(dump(stores), model(committed), `after a crash ${point}`);
      await stores.close();
    }
  } finally {
    tmp.cleanup();
  }
});
