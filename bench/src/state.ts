/**
 * pnpm bench:state — the state stack of @vltava/state.
 *
 * 1. put / get / range ops/s through the full stack (typed facade -> change-logging -> overlay ->
 *    LevelDB, commits included), and through the bare LevelDB store (classic-level) for comparison.
 * 2. Restore throughput from an in-memory changelog (the kafkajs figure is the runtime's).
 * 3. Time to resume after kill -9 with 100k and 1M keys: a child process builds the state, commits,
 *    writes one more transaction to the changelog (committed in "Kafka", not yet in LevelDB) and
 *    SIGKILLs itself; the benchmark then times open + restore of the same directory.
 */
import type { CollectedRecord, KeyValueStore, RecordCollector, Serde, StoreSpec } from '@vltava/dsl';
import { InMemoryChangelog, openTaskStores, type RestoreProgress, type TaskStores } from '@vltava/state';
import { ClassicLevel } from 'classic-level';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, recordSection, type BenchRow } from './report.js';

const APP = 'bench';
const TASK = '0_0';
const TOPIC = `${APP}-kv-changelog`;

const keySerde: Serde<string> = { name: 'string', serialize: (s) => Buffer.from(s, 'latin1'), deserialize: (b) => b.toString('latin1') };
const valueSerde: Serde<number> = {
  name: 'int32',
  serialize: (n) => {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(n);
    return b;
  },
  deserialize: (b) => b.readInt32BE(0),
};

function spec(rangeScans: boolean): StoreSpec {
  return { name: 'kv', kind: 'keyValue', keySerde, valueSerde, logging: true, caching: false, rangeScans } as StoreSpec;
}

const key = (i: number): string => `key-${String(i).padStart(9, '0')}`;

function rate(n: number, ms: number): number {
  return (n / ms) * 1000;
}

/** A collector that buffers records like a producer does until the transaction is sent. */
class Buffered implements RecordCollector {
  records: CollectedRecord[] = [];
  send(r: CollectedRecord): void {
    this.records.push(r);
  }
}

async function open(stateDir: string, collector: RecordCollector, rangeScans = true): Promise<TaskStores> {
  return openTaskStores({ applicationId: APP, taskId: TASK, partition: 0, specs: [spec(rangeScans)], collector, backend: 'leveldb', stateDir });
}

/** Sends the buffered records in one committed transaction and commits the stores. */
async function commitThrough(stores: TaskStores, col: Buffered, changelog: InMemoryChangelog | undefined): Promise<void> {
  stores.flush();
  if (changelog === undefined) {
    const n = col.records.length;
    col.records = [];
    await stores.commit(n === 0 ? new Map() : new Map([['kv', n]]));
    return;
  }
  const txn = changelog.beginTransaction();
  for (const r of col.records) txn.send(r);
  col.records = [];
  const last = txn.commit().get(TOPIC);
  await stores.commit(last === undefined ? new Map() : new Map([['kv', last]]));
}

async function pointOnlyPut(n: number): Promise<BenchRow> {
  const dir = mkdtempSync(join(tmpdir(), 'vltava-bench-point-'));
  const col = new Buffered();
  const stores = await open(dir, col, false);
  const kv = stores.getStore<KeyValueStore<string, number>>('kv');
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    kv.put(key((i * 7919) % n), i);
    if ((i + 1) % 10_000 === 0) {
      col.records = [];
      await stores.commit(new Map([['kv', i]]));
    }
  }
  const ms = performance.now() - t0;
  await stores.close();
  rmSync(dir, { recursive: true, force: true });
  return { metric: 'full stack: put, point-only store', value: `${fmt(rate(n, ms))} ops/s`, note: 'same, rangeScans: false (no key index to maintain)' };
}

async function stackOps(n: number): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'vltava-bench-state-'));
  const col = new Buffered();
  const stores = await open(dir, col);
  const kv = stores.getStore<KeyValueStore<string, number>>('kv');
  const commitEvery = 10_000;
  let t0 = performance.now();
  let offset = 0;
  for (let i = 0; i < n; i++) {
    kv.put(key((i * 7919) % n), i);
    if ((i + 1) % commitEvery === 0) {
      offset += col.records.length;
      col.records = [];
      await stores.commit(new Map([['kv', offset]]));
    }
  }
  await stores.commit(new Map([['kv', offset + col.records.length]]));
  col.records = [];
  const putMs = performance.now() - t0;

  t0 = performance.now();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += kv.get(key((i * 104729) % n)) ?? 0;
  const getMs = performance.now() - t0;

  const scans = 20_000;
  const width = 10;
  t0 = performance.now();
  let seen = 0;
  for (let i = 0; i < scans; i++) {
    const from = (i * 7919) % (n - width);
    for (const e of kv.range(key(from), key(from + width - 1))) seen += e.value >= 0 ? 1 : 0;
  }
  const rangeMs = performance.now() - t0;
  await stores.close();
  rmSync(dir, { recursive: true, force: true });
  if (sum < 0 || seen !== scans * width) throw new Error(`bench self-check failed: ${seen}`);
  return [
    { metric: 'full stack: put', value: `${fmt(rate(n, putMs))} ops/s`, note: `${fmt(n)} puts, LevelDB commit batch every ${fmt(commitEvery)} (included), changelog records collected` },
    { metric: 'full stack: get (committed keys)', value: `${fmt(rate(n, getMs))} ops/s`, note: 'typed facade + overlay miss + getSync' },
    { metric: 'full stack: range of 10', value: `${fmt(rate(scans, rangeMs))} scans/s`, note: `${fmt(rate(scans * width, rangeMs))} entries/s, key index + getSync` },
  ];
}

async function bareOps(n: number): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'vltava-bench-bare-'));
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const v = Buffer.alloc(4);
  let t0 = performance.now();
  let batch = db.batch();
  for (let i = 0; i < n; i++) {
    batch.put(Buffer.from(key((i * 7919) % n), 'latin1'), v);
    if ((i + 1) % 10_000 === 0) {
      await batch.write();
      batch = db.batch();
    }
  }
  await batch.write();
  const putMs = performance.now() - t0;
  t0 = performance.now();
  let found = 0;
  for (let i = 0; i < n; i++) if (db.getSync(Buffer.from(key((i * 104729) % n), 'latin1')) !== undefined) found++;
  const getMs = performance.now() - t0;
  const scans = 5_000;
  t0 = performance.now();
  let seen = 0;
  for (let i = 0; i < scans; i++) {
    const from = (i * 7919) % (n - 10);
    seen += (await db.iterator({ gte: Buffer.from(key(from), 'latin1'), limit: 10 }).all()).length;
  }
  const rangeMs = performance.now() - t0;
  t0 = performance.now();
  const gets = 20_000;
  for (let i = 0; i < gets; i++) await db.get(Buffer.from(key(i), 'latin1'));
  const asyncGetMs = performance.now() - t0;
  await db.close();
  rmSync(dir, { recursive: true, force: true });
  if (found !== n || seen !== scans * 10) throw new Error('bench self-check failed (bare)');
  return [
    { metric: 'bare LevelDB: put', value: `${fmt(rate(n, putMs))} ops/s`, note: 'classic-level chained batch of 10,000' },
    { metric: 'bare LevelDB: getSync', value: `${fmt(rate(n, getMs))} ops/s` },
    { metric: 'bare LevelDB: awaited get', value: `${fmt(rate(gets, asyncGetMs))} ops/s`, note: 'what a promise per read would cost' },
    { metric: 'bare LevelDB: range of 10 (async iterator)', value: `${fmt(rate(scans, rangeMs))} scans/s`, note: 'awaited; not usable on the synchronous per-record path' },
  ];
}

async function restoreThroughput(n: number): Promise<BenchRow[]> {
  const changelog = new InMemoryChangelog();
  const v = Buffer.alloc(4);
  for (let i = 0; i < n; i++) changelog.append(TOPIC, 0, Buffer.from(key((i * 7919) % (n / 2)), 'latin1'), v);
  const dir = mkdtempSync(join(tmpdir(), 'vltava-bench-restore-'));
  const stores = await open(dir, new Buffered());
  const t0 = performance.now();
  let restored = 0;
  await stores.restore(changelog, { onRestoreEnd: (p) => (restored = p.restored) });
  const ms = performance.now() - t0;
  await stores.close();
  rmSync(dir, { recursive: true, force: true });
  if (restored !== n) throw new Error(`restored ${restored} of ${n}`);
  return [{ metric: 'restore from in-memory changelog', value: `${fmt(rate(n, ms))} records/s`, note: `${fmt(n)} records (${fmt(n / 2)} keys in scattered order), batches of 1,000, LevelDB` }];
}

// ---- resume after kill -9 -------------------------------------------------------------------

const TAIL = 1000;
const SINCE_SNAPSHOT = 5000;

/**
 * Child: builds `keys` keys and closes cleanly (which writes the key index snapshot), reopens,
 * commits SINCE_SNAPSHOT more updates (in LevelDB, not in the snapshot), then writes one more
 * transaction that commits in "Kafka" but dies (SIGKILL) before its LevelDB batch.
 */
async function crashChild(stateDir: string, file: string, keys: number): Promise<void> {
  const changelog = new InMemoryChangelog();
  const col = new Buffered();
  let stores = await open(stateDir, col, true);
  let kv = stores.getStore<KeyValueStore<string, number>>('kv');
  for (let i = 0; i < keys; i++) {
    kv.put(key(i), i);
    if ((i + 1) % 50_000 === 0) await commitThrough(stores, col, changelog);
  }
  await commitThrough(stores, col, changelog);
  const snapshotAt = stores.checkpoint('kv') ?? -1;
  await stores.close();
  stores = await open(stateDir, col, true);
  await stores.restore(changelog);
  kv = stores.getStore<KeyValueStore<string, number>>('kv');
  for (let i = 0; i < SINCE_SNAPSHOT; i++) {
    kv.put(key(keys + i), i); // new keys: the snapshot does not know them
    if ((i + 1) % 1000 === 0) await commitThrough(stores, col, changelog);
  }
  // the restarted task reads from the snapshot's checkpoint on; drop the head of the log to keep
  // the file small (as compaction would)
  changelog.truncate(TOPIC, 0, snapshotAt + 1);
  for (let i = 0; i < TAIL; i++) kv.put(key(i), -i);
  stores.flush();
  const txn = changelog.beginTransaction();
  for (const r of col.records) txn.send(r);
  txn.commit(); // committed in Kafka ...
  writeFileSync(file, JSON.stringify(changelog));
  process.kill(process.pid, 'SIGKILL'); // ... but the process dies before the LevelDB batch
}

interface Resume {
  readonly point: number;
  readonly snapshot: number;
  readonly scan: number;
  readonly restored: number;
}

async function resumeAfterCrash(keys: number): Promise<Resume> {
  const dir = mkdtempSync(join(tmpdir(), 'vltava-bench-crash-'));
  const file = join(dir, 'changelog.json');
  const stateDir = join(dir, 'state');
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, [self, '--crash-child', stateDir, file, String(keys)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.signal !== 'SIGKILL') throw new Error(`crash child did not die by SIGKILL: ${r.status} ${r.stderr}`);
  const changelog = InMemoryChangelog.fromJSON(JSON.parse(readFileSync(file, 'utf8')));
  // the same crashed directory three times: point-only store; range-capable store with its key
  // index snapshot; range-capable store without a snapshot (the index is scanned from LevelDB)
  const copies = { point: join(dir, 'point'), snapshot: join(dir, 'snapshot'), scan: join(dir, 'scan') };
  for (const c of Object.values(copies)) cpSync(stateDir, c, { recursive: true });
  rmSync(join(copies.scan, APP, TASK, 'index'), { recursive: true, force: true });
  const time = async (stateRoot: string, rangeScans: boolean) => {
    const t0 = performance.now();
    const stores = await open(stateRoot, new Buffered(), rangeScans);
    let restored = 0;
    await stores.restore(changelog, { onRestoreEnd: (p: RestoreProgress) => (restored = p.restored) });
    const ms = performance.now() - t0;
    const kv = stores.getStore<KeyValueStore<string, number>>('kv');
    if (kv.get(key(TAIL - 1)) !== -(TAIL - 1) || kv.get(key(keys - 1)) !== keys - 1) throw new Error('resumed state is wrong');
    if (rangeScans) {
      const n = [...kv.range(key(keys), key(keys + SINCE_SNAPSHOT))].length;
      if (n !== SINCE_SNAPSHOT) throw new Error(`key index is wrong: ${n} of ${SINCE_SNAPSHOT} keys written after the snapshot`);
    }
    await stores.close();
    return { ms, restored };
  };
  const point = await time(copies.point, false);
  const snapshot = await time(copies.snapshot, true);
  const scan = await time(copies.scan, true);
  rmSync(dir, { recursive: true, force: true });
  if (point.restored !== TAIL || snapshot.restored !== TAIL || scan.restored !== TAIL) throw new Error('each open must replay exactly the tail');
  return { point: point.ms, snapshot: snapshot.ms, scan: scan.ms, restored: point.restored };
}

async function main(): Promise<void> {
  const rows: BenchRow[] = [];
  const n = 200_000;
  rows.push(...(await stackOps(n)));
  rows.push(await pointOnlyPut(n));
  rows.push(...(await bareOps(n)));
  rows.push(...(await restoreThroughput(400_000)));
  for (const keys of [100_000, 1_000_000]) {
    const r = await resumeAfterCrash(keys);
    const k = fmt(keys);
    rows.push(
      { metric: `resume after kill -9, ${k} keys, point-only store`, value: `${r.point.toFixed(0)} ms`, note: `open + replay of the ${fmt(r.restored)}-record committed tail` },
      {
        metric: `resume after kill -9, ${k} keys, range-capable store`,
        value: `${r.snapshot.toFixed(0)} ms`,
        note: `same + key index from its snapshot, caught up over the ${fmt(SINCE_SNAPSHOT)} records committed since`,
      },
      { metric: `resume after kill -9, ${k} keys, range-capable, no snapshot`, value: `${r.scan.toFixed(0)} ms`, note: 'key index scanned from LevelDB (grows with keys)' },
    );
  }
  recordSection(
    'state',
    'State stores (@vltava/state)',
    'pnpm bench:state',
    rows,
    [
      'The per-record path is synchronous: reads use classic-level `getSync` through the overlay; range scans walk an in-memory key index (keys only) and read values with `getSync`.',
      'Resume after kill -9 replays only the committed tail after the LevelDB checkpoint, so it stays flat as the state grows. A range-capable store also needs its in-memory key index: it loads the snapshot written at the last clean close (or at most `indexSnapshotIntervalMs` after a commit) and reconciles only the keys in the changelog records since; without a snapshot it scans LevelDB, which grows with the number of keys (see docs/state.md).',
      'The restore figure reads an in-memory changelog; the throughput from a real changelog topic is measured by the runtime (kafkajs reader).',
    ].join('\n'),
  );
}

if (process.argv[2] === '--crash-child') {
  const [, , , stateDir, file, keys] = process.argv as [string, string, string, string, string, string];
  await crashChild(stateDir, file, Number(keys));
} else {
  await main();
}
