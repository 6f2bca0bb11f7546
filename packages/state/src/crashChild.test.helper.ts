/**
 * Child process of the crash tests: runs task rounds through the full commit protocol against a
 * LevelDB state dir and an InMemoryChangelog persisted in a file, then kills itself with SIGKILL at
 * the requested commit step of the last round (no close, no flush of anything: a real crash).
 *
 * argv: stateDir changelogFile firstRound lastRound crashPoint [closeAfterRound] [indexSnapshotIntervalMs]
 * crashPoint: beforeSend | afterSend | afterKafkaCommit | afterBatch | none
 * closeAfterRound: close cleanly after that round and reopen (a clean close writes key index snapshots)
 */
import type { CollectedRecord } from '@vltava/dsl';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { InMemoryChangelog } from './inMemoryChangelog.js';
import { openTaskStores } from './taskStores.js';
import { apply, CRASH_APP, CRASH_TASK, crashSpecs, roundOps } from './crashWorkload.test.helper.js';
import { offsetsByStore } from './testSupport.test.helper.js';

const [stateDir, file, first, last, crashPoint, closeAfter = '0', snapshotMs = '60000'] = process.argv.slice(2) as [string, string, string, string, string, string?, string?];

function save(c: InMemoryChangelog): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(c));
  renameSync(`${file}.tmp`, file);
}

function crashIf(point: string, round: number): void {
  if (round === Number(last) && crashPoint === point) process.kill(process.pid, 'SIGKILL');
}

const changelog = existsSync(file) ? InMemoryChangelog.fromJSON(JSON.parse(readFileSync(file, 'utf8'))) : new InMemoryChangelog();
changelog.abortOpenTransactions(); // initTransactions of the new producer fences the old one
save(changelog);
const buffer: CollectedRecord[] = [];
const open = () =>
  openTaskStores({
    applicationId: CRASH_APP,
    taskId: CRASH_TASK,
    partition: 1,
    specs: crashSpecs,
    collector: { send: (r) => buffer.push(r) },
    backend: 'leveldb',
    stateDir,
    recordTimestamp: () => 1,
    indexSnapshotIntervalMs: Number(snapshotMs),
  });
let stores = await open();
await stores.restore(changelog);
for (let round = Number(first); round <= Number(last); round++) {
  apply(stores, roundOps(round));
  stores.flush();
  crashIf('beforeSend', round);
  const txn = changelog.beginTransaction();
  for (const r of buffer.splice(0)) txn.send(r);
  save(changelog);
  crashIf('afterSend', round);
  const offsets = offsetsByStore(CRASH_APP, txn.commit());
  save(changelog);
  crashIf('afterKafkaCommit', round);
  await stores.commit(offsets);
  crashIf('afterBatch', round);
  if (round === Number(closeAfter)) {
    await stores.close();
    stores = await open();
    await stores.restore(changelog);
  }
}
await stores.close();
