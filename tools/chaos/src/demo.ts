/**
 * `pnpm demo`: the ledger, exactly once, through a crash in the middle of a commit.
 *   1. gets a broker: KAFKA_BROKERS, the one from `pnpm kafka:up`, or a fresh local one from the jars;
 *   2. starts two ledger instances (child processes) that share the 4 tasks;
 *   3. sends deposits and transfers for 20 accounts, with client resends and some bad commands;
 *   4. arms instance A to kill -9 itself inside a transaction, after it sent its outputs and input
 *      offsets and before it commits; B takes over A's tasks, restores their balances, carries on;
 *      A comes back on its old state directory;
 *   5. reads the journal, balances and rejections with an independent read_committed consumer and
 *      checks them against a sequential reference model: 0 lost, 0 duplicated, money conserved.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Workload, createLedgerTopics, referenceModel, type LedgerTopics, type WorkloadRecord } from '@vltava/example-ledger';
import { resolveBrokers } from '@vltava/kafka-local';
import { awaitCaughtUp } from '@vltava/kafka-local/testing';
import { Kafka, logLevel } from 'kafkajs';
import { spawnInstance, until, type Instance } from './instances.js';
import { commandProducer, fmt, verifyOnBroker } from './ledgerIo.js';

process.removeAllListeners('warning'); // kafkajs trips a harmless TimeoutNegativeWarning (docs/kafkajs-notes.md)
const t0 = Date.now();
const secs = (): string => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s`;
const say = (s: string): void => console.log(`[${secs()}] ${s}`);
const PARTITIONS = 4;
const TOTAL = 6_000;

const resolved = await resolveBrokers({ startLocal: true });
say(`broker ${resolved.brokers.join(',')} (from ${resolved.source})`);
const kafka = new Kafka({ clientId: 'vltava-demo', brokers: resolved.brokers, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
const run = Date.now().toString(36);
const applicationId = `ledger-demo-${run}`;
const topics: LedgerTopics = { commands: `demo-${run}-commands`, balances: `demo-${run}-balances`, journal: `demo-${run}-journal`, rejections: `demo-${run}-rejections` };
const home = mkdtempSync(join(tmpdir(), 'vltava-demo-'));
const instances: Instance[] = [];
let ok = false;
try {
  await createLedgerTopics(admin, { partitions: PARTITIONS, topics });
  say(`topics ${topics.commands} -> ${topics.journal}, ${topics.balances}, ${topics.rejections} (${PARTITIONS} partitions)`);
  const base = { applicationId, brokers: resolved.brokers, topics, partitions: PARTITIONS, commitIntervalMs: 100, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500 };
  const start = (name: string, extra: Record<string, unknown> = {}): Instance => {
    const i = spawnInstance(name, { ...base, stateDir: join(home, name), ...extra });
    instances.push(i);
    return i;
  };
  let a = start('A', { crashAt: { point: 'after-offsets', after: 1, onSignal: true } });
  const b = start('B');
  const tasksOf = (i: Instance): string => [...i.tasks()].sort().join(', ') || 'none';
  await Promise.all([a, b].map((i) => i.waitUntil(() => i.tasks().size > 0, 'running tasks', 60_000)));
  await until(() => a.tasks().size + b.tasks().size === PARTITIONS, 'A and B sharing all tasks', 60_000);
  say(`instance A (pid ${a.pid}) runs tasks ${tasksOf(a)}; instance B (pid ${b.pid}) runs ${tasksOf(b)}`);

  // Commands: deposits and transfers, 7% client resends, some invalid ones.
  const w = new Workload({ seed: Number(run.slice(-4).replace(/\D/g, '') || 7), accounts: 20 });
  const sent: WorkloadRecord[] = [];
  const producer = await commandProducer(kafka);
  const sendSome = async (n: number): Promise<void> => {
    for (let done = 0; done < n; done += 200) {
      const batch = w.batch(Math.min(200, n - done));
      await producer.send({ topic: topics.commands, messages: batch.map((r) => ({ key: r.key, value: r.value })) });
      sent.push(...batch);
      await new Promise((r) => setTimeout(r, 100)); // a steady stream, not one burst
    }
  };
  say(`sending ${fmt(TOTAL)} commands for 20 accounts (deposits, transfers, client resends, invalid amounts, unknown accounts)`);
  await sendSome(TOTAL / 3);

  // The crash.
  say(`arming A: it will kill -9 itself inside its next transaction, after sending outputs and input offsets, before committing`);
  const crashFrom = a.lines.length;
  a.signal('SIGUSR2');
  const feeding = sendSome(TOTAL / 3);
  const crash = await a.waitFor(/^crash /, 60_000, crashFrom);
  const crashedAt = crash.at;
  const lostTasks = a.tasks();
  const exit = await a.exited;
  say(`*** A died (${exit.signal}) at "${crash.text.split(' ')[1]}" in task ${crash.text.split(' ')[2]}: that transaction is open, its records are in the log but not committed`);
  const bFrom = b.lines.length;
  await b.waitUntil(() => b.tasks().size === PARTITIONS, 'running all tasks', 90_000);
  const takeovers = b.lines.slice(bFrom).filter((l) => l.text.startsWith('running ') && lostTasks.has(l.text.split(' ')[1]!));
  say(
    `B took over ${takeovers.map((l) => l.text.split(' ')[1]).join(', ')} ${((Date.now() - crashedAt) / 1000).toFixed(1)} s after the crash ` +
      `(A's group session had to time out), restoring ${takeovers.map((l) => `${l.text.split(' ')[2]}`).join(' + ')} state records (balances, seen command ids) from the changelogs; ` +
      `its producers fenced A's and aborted the open transaction`,
  );
  await feeding;
  a = start('A', {});
  say(`A restarts (pid ${a.pid}) on its old state directory`);
  await until(() => a.tasks().size > 0 && a.tasks().size + b.tasks().size === PARTITIONS, 'A and B sharing the tasks again', 90_000);
  say(`A runs ${tasksOf(a)} again; B runs ${tasksOf(b)}`);
  await sendSome(TOTAL - sent.length);
  await producer.disconnect();
  say(`all ${fmt(sent.length)} commands sent; waiting until every one is processed and committed`);
  await awaitCaughtUp(admin, applicationId, topics.commands, 120_000);
  await awaitCaughtUp(admin, applicationId, `${applicationId}-credits-repartition`, 120_000);
  for (const i of instances) i.signal('SIGTERM');
  await Promise.all(instances.map((i) => i.exited));

  // Verification.
  say('verifying with an independent read_committed consumer against a sequential reference model:');
  const ref = referenceModel(sent.map((r) => r.command));
  const { report: r, outputs } = await verifyOnBroker(kafka, topics, ref);
  const codes = new Map<string, number>();
  for (const x of outputs.rejections) codes.set(x.value.code, (codes.get(x.value.code) ?? 0) + 1);
  const finalBalances = new Map<string, number>();
  for (const x of outputs.balances) finalBalances.set(x.key!, x.value);
  const total = [...finalBalances.values()].reduce((s, x) => s + x, 0);
  const row = (k: string, v: string): void => console.log(`    ${k.padEnd(22)} ${v}`);
  row('commands sent', `${fmt(r.commandsSent)} (${fmt(r.resends)} client resends, each applied once)`);
  row('accepted', `${fmt(r.acceptedIds)}`);
  row('rejected', `${fmt(r.rejectedIds)}: ${[...codes].map(([c, n]) => `${c} ${n}`).join(', ')}`);
  row('journal entries', `${fmt(r.journalEntries)} (one per deposit, one debit + one credit per transfer)`);
  row('lost / duplicated', `${r.lost.length} / ${r.duplicated.length}`);
  row('money', `balances sum to ${fmt(total)} = deposits ${fmt(ref.depositedTotal)}${total === ref.depositedTotal ? '' : '  MISMATCH'}`);
  row('balances vs model', r.violations.some((v) => v.includes('final balance')) ? 'MISMATCH' : `all ${finalBalances.size} accounts equal`);
  row('top balances', [...finalBalances].sort((x, y) => y[1] - x[1]).slice(0, 5).map(([acc, v]) => `${acc} ${fmt(v)}`).join(' · '));
  for (const v of r.violations) console.log(`    VIOLATION ${v}`);
  ok = r.ok;
  say(ok ? 'exactly once: PASS' : `exactly once: FAIL (${r.violations.length} violations)`);
} finally {
  for (const i of instances) i.signal('SIGKILL');
  await Promise.all(instances.map((i) => i.exited));
  const internal = (await admin.listTopics().catch(() => [] as string[])).filter((t) => t.startsWith(`${applicationId}-`));
  await admin.deleteTopics({ topics: [...Object.values(topics), ...internal] }).catch(() => undefined);
  await admin.disconnect();
  await resolved.release();
  rmSync(home, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
