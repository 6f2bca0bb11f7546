/**
 * `pnpm chaos`: the ledger under faults on a real broker of its own, then the exactly-once check.
 *
 *   pnpm chaos                  bounded run (about 2–3 minutes, at least 10 faults), as in CI
 *   pnpm chaos --full           at least 50 faults (about 10 minutes); writes docs/chaos-report.md
 *   options: --duration <s>  --faults <n>  --seed <n>  --instances <1-3>  --rate <commands/s>  --report <file>
 *            --kinds sigkill,commit-point,zombie  --no-broker-restart
 * Exits 1 on any violation. Needs Java 17+ (the broker is started from the jars, see docs/local-kafka.md).
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatReport, runChaos, type FaultKind } from './chaos.js';

// kafkajs' throttling timer trips Node's TimeoutNegativeWarning; it is harmless (docs/kafkajs-notes.md).
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name !== 'TimeoutNegativeWarning') console.warn(w);
});

// Ctrl-C / kill: exit, so that runChaos' exit hook kills the instances and the broker it started.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

const args = process.argv.slice(2);
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
const report = await runChaos({
  durationMs: num('duration', full ? 540 : 100) * 1000,
  minFaults: num('faults', full ? 50 : 10),
  seed: num('seed', Date.now() % 100_000),
  maxInstances: num('instances', 3),
  rate: num('rate', 300),
  ...(opt('kinds') ? { kinds: opt('kinds')!.split(',') as FaultKind[] } : {}),
  brokerRestart: !args.includes('--no-broker-restart'),
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
