/**
 * `pnpm chaos`: the ledger under faults on a real broker of its own, then the exactly-once check.
 *
 *   pnpm chaos                  bounded run (about 2–3 minutes, at least 10 faults, every kind at least once), as in CI
 *   pnpm chaos --full           at least 100 faults, at least 20 of each new kind (commit-error, network,
 *                               fence, retention) and 10 of each old one; writes docs/chaos-report.md
 *   options: --duration <s>  --faults <n>  --seed <n>  --instances <1-3>  --rate <commands/s>  --report <file>
 *            --kinds sigkill,commit-point,zombie,commit-error,network,fence,retention  --no-broker-restart
 *            --immediate-takeover (after a kill, the dead member leaves the group at once: its tasks move
 *            within a heartbeat, not after its session timeout; KAFKA_VERSION picks the broker, e.g. 3.9.1)
 *            --points after-offsets,after-commit (the commit steps commit-point kills pick from; default all)
 *            --catch-up <s> (how long the group may take to catch up after the faults; default 180)
 *            --recovery <s> (how long a fault's recovery may take before it is reported as none; default 60)
 *   pnpm chaos --fuzz           the bad-input run instead: 10,000 bad records of every kind among valid
 *                               traffic, on a broker of its own (options: fuzzRun.ts)
 * Verifies with kcat (librdkafka) and kafkajs, both read_committed; kcat must be installed.
 * Exits 1 on any violation. Needs Java 17+ (the broker is started from the jars, see docs/local-kafka.md).
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FAULT_KINDS, NEW_FAULT_KINDS, POINTS, formatReport, runChaos, type FaultKind } from './chaos.js';
import type { CommitPoint } from '@vltava/runtime';

// kafkajs' throttling timer trips Node's TimeoutNegativeWarning; it is harmless (docs/kafkajs-notes.md).
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name !== 'TimeoutNegativeWarning') console.warn(w);
});

// Ctrl-C / kill: exit, so that runChaos' exit hook kills the instances and the broker it started.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

const args = process.argv.slice(2);
if (args.includes('--fuzz')) {
  const { fuzzMain } = await import('./fuzzRun.js');
  process.exit(await fuzzMain(args));
}
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const full = args.includes('--full');
const num = (name: string, dflt: number): number => {
  const v = opt(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`--${name} must be a number, got ${v}`);
    process.exit(2);
  }
  return n;
};
const reportFile = opt('report') ?? (full ? fileURLToPath(new URL('../../../docs/chaos-report.md', import.meta.url)) : undefined);
const kinds = opt('kinds')?.split(',').map((x) => x.trim()) as FaultKind[] | undefined;
for (const k of kinds ?? []) {
  if (!FAULT_KINDS.includes(k)) {
    console.error(`--kinds: unknown kind ${k}; the kinds are ${FAULT_KINDS.join(', ')}`);
    process.exit(2);
  }
}
const points = opt('points')?.split(',').map((x) => x.trim()) as CommitPoint[] | undefined;
for (const p of points ?? []) {
  if (!POINTS.includes(p)) {
    console.error(`--points: unknown commit point ${p}; the points are ${POINTS.join(', ')}`);
    process.exit(2);
  }
}
// --full: the new kinds come up twice per round, and each must reach 20 (100+ faults in all).
const plan = kinds ?? (full ? [...FAULT_KINDS, ...NEW_FAULT_KINDS] : FAULT_KINDS);
const minPerKind: Partial<Record<FaultKind, number>> = Object.fromEntries(plan.map((k) => [k, full ? (NEW_FAULT_KINDS.includes(k) ? 20 : 10) : 1]));
const report = await runChaos({
  durationMs: num('duration', full ? 600 : 100) * 1000,
  minFaults: num('faults', full ? 100 : 10),
  minPerKind,
  seed: num('seed', Date.now() % 100_000),
  maxInstances: num('instances', 3),
  rate: num('rate', 300),
  kinds: plan,
  catchUpMs: num('catch-up', 180) * 1000,
  recoveryLimitMs: num('recovery', 60) * 1000,
  brokerRestart: !args.includes('--no-broker-restart'),
  immediateTakeover: args.includes('--immediate-takeover'),
  ...(points === undefined ? {} : { points }),
});
const md = formatReport(report);
console.log(`\n${md}\n`);
if (reportFile) {
  writeFileSync(
    reportFile,
    `# Chaos run report\n\nWritten by \`pnpm chaos${full ? ' --full' : ''}\` on ${new Date().toISOString().slice(0, 10)} (see [exactly-once.md](exactly-once.md) for what it checks).\n\n${md}\n`,
  );
  console.log(`report written to ${reportFile}`);
}
console.log(report.ok ? 'chaos: PASS — 0 lost, 0 duplicated, invariants hold, balances match the reference model' : `chaos: FAIL — ${report.violations.length} violation(s)`);
process.exit(report.ok ? 0 : 1);
