/**
 * The ledger on the real broker: two instances share the work, one is closed half-way and the other
 * takes over its tasks; resends included. The committed journal, balances and rejections (read with
 * an independent read_committed consumer) must match the sequential reference model.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { awaitCaughtUp, readCommitted, useKafka } from '@vltava/kafka-local/testing';
import type { LedgerTopics } from './buildLedgerTopology.js';
import { createLedgerApp } from './ledgerApp.js';
import { decodeOutputs, referenceModel, verifyLedger } from './verifyLedger.js';
import { Workload } from './workload.js';

const kafka = useKafka(test);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

test('[broker] the ledger, exactly once: two instances, one leaves half-way; the outputs match the reference model', async (t) => {
  const k = kafka();
  const partitions = 4;
  const [commands, balances, journal, rejections] = await k.createTopics(['lg-commands', 'lg-balances', 'lg-journal', 'lg-rejections'].map((prefix) => ({ prefix, partitions })));
  const topics: LedgerTopics = { commands: commands!, balances: balances!, journal: journal!, rejections: rejections! };
  const applicationId = k.uniqueName('lg-app');
  const config = { applicationId, brokers: k.brokers, topics, partitions, sessionTimeoutMs: 6_000, logger: quiet };
  const a = createLedgerApp({ ...config, stateDir: mkdtempSync(join(tmpdir(), 'lg-a-')) });
  const b = createLedgerApp({ ...config, stateDir: mkdtempSync(join(tmpdir(), 'lg-b-')) });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const running = (app: typeof a): Promise<void> => new Promise((resolve) => app.on('app.state', ({ to }) => to === 'RUNNING' && resolve()));
  const bothRunning = Promise.all([running(a), running(b)]);
  await Promise.all([a.start(), b.start()]);
  await bothRunning;

  const w = new Workload({ seed: 21, accounts: 16 });
  const records = w.batch(4_000);
  const producer = k.client().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const send = async (from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i += 250) {
      await producer.send({ topic: topics.commands, messages: records.slice(i, Math.min(to, i + 250)).map((r) => ({ key: r.key, value: r.value })) });
    }
  };
  await send(0, 2_000);
  await awaitCaughtUp(k.admin, applicationId, topics.commands, 90_000);
  t.true(a.metrics().tasks.length > 0 && b.metrics().tasks.length > 0, 'both instances had tasks');
  await a.close(); // a leaves; b takes over its tasks (restoring the balances from the changelog)
  await send(2_000, 4_000);
  await producer.disconnect();
  await awaitCaughtUp(k.admin, applicationId, topics.commands, 90_000);
  await awaitCaughtUp(k.admin, applicationId, `${applicationId}-credits-repartition`, 90_000);
  t.is(b.metrics().tasks.length, partitions, 'b runs every task');
  await b.close();

  const [j, bal, rej] = await Promise.all([readCommitted(k.client(), topics.journal), readCommitted(k.client(), topics.balances), readCommitted(k.client(), topics.rejections)]);
  const ref = referenceModel(records.map((r) => r.command));
  const report = verifyLedger(ref, decodeOutputs({ journal: j, balances: bal, rejections: rej }));
  t.log(`${report.commandsSent} commands (${report.resends} resends): ${report.acceptedIds} accepted, ${report.rejectedIds} rejected; ${report.journalEntries} journal entries`);
  t.deepEqual(report.violations, []);
  t.true(report.acceptedIds > 2_500 && report.resends > 100);
});
