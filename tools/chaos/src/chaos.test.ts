/**
 * The bounded chaos run, as CI runs it: about 2 minutes of faults (at least 10, every kind at least once) on a
 * broker this test starts itself (it restarts that broker once; the shared broker is never touched).
 */
import test from 'ava';
import { FAULT_KINDS, formatReport, runChaos } from './chaos.js';

test('[broker] chaos: kill -9, commit-point kills, zombies, a broker restart, thrown commit errors, network faults, fencing and retention lose and duplicate nothing', async (t) => {
  t.timeout(420_000);
  const minPerKind = Object.fromEntries(FAULT_KINDS.map((k) => [k, 1]));
  const report = await runChaos({ durationMs: 90_000, minFaults: 10, minPerKind, seed: Number(process.env.CHAOS_SEED ?? Date.now() % 100_000), log: (l) => t.log(l) });
  t.log(`\n${formatReport(report)}`);
  t.deepEqual(report.violations, []);
  t.deepEqual(report.ledger.lost, []);
  t.deepEqual(report.ledger.duplicated, []);
  t.true(report.faults.length >= 10, `${report.faults.length} faults`);
  for (const kind of [...FAULT_KINDS, 'broker-restart'] as const) t.true(report.faultCounts[kind] >= 1, `at least one ${kind}`);
  t.regex(report.verifier, /^kcat .*kafkajs agrees/);
  t.true(report.ledger.acceptedIds > 5_000 && report.ledger.resends > 100, 'the run moved real traffic');
  t.true(report.ok);
});
