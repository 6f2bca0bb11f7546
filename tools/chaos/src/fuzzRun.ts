/**
 * `pnpm chaos --fuzz`: the full bad-input run (docs/chaos-report.md, "Bad-input run").
 *
 *   pnpm chaos --fuzz                      10,000 bad records of every kind among 200,000 valid commands
 *   options: --per-kind <n>  --valid <n>  --seed <n>  --partitions <n>  --kinds a,b,...  --catch-up <s>
 *            --session-timeout <ms>  --shared-broker (KAFKA_BROKERS / pnpm kafka:up instead of a broker of its own)
 *            --report <file> (appends the "Bad-input run" section; default docs/chaos-report.md for a full run)
 * Verifies with kcat; exits 1 on any violation.
 */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalKafka, type RunningKafka } from '@vltava/kafka-local';
import { connectTestKafka } from '@vltava/kafka-local/testing';
import { Kafka, logLevel } from 'kafkajs';
import { ALL_KINDS, DEFAULT_LIMITS, formatFuzzReport, fuzzTopicConfigs, runFuzz, type BadKind } from './fuzz.js';

export async function fuzzMain(args: readonly string[]): Promise<number> {
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const num = (name: string, dflt: number): number => {
    const v = opt(name);
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number, got ${v}`);
    return n;
  };
  const kinds = opt('kinds')?.split(',').map((k) => k.trim()) as BadKind[] | undefined;
  for (const k of kinds ?? []) if (!ALL_KINDS.includes(k)) throw new Error(`--kinds: unknown kind ${k}; the kinds are ${ALL_KINDS.join(', ')}`);
  const perKind = num('per-kind', 10_000);
  const valid = num('valid', 200_000);
  const seed = num('seed', 12);
  const partitions = num('partitions', 4);
  const sessionTimeoutMs = num('session-timeout', 6_000);
  const full = kinds === undefined && perKind >= 10_000;
  const reportFile = opt('report') ?? (full ? fileURLToPath(new URL('../../../docs/chaos-report.md', import.meta.url)) : undefined);
  const log = (m: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${m}`);
  const t0 = Date.now();

  let own: RunningKafka | undefined;
  let home: string | undefined;
  let brokers: string[];
  let release: (() => Promise<void>) | undefined;
  if (args.includes('--shared-broker')) {
    const h = await connectTestKafka();
    brokers = h.brokers;
    release = () => h.release();
  } else {
    home = mkdtempSync(join(tmpdir(), 'vltava-fuzz-broker-'));
    log('starting a broker of its own');
    own = await startLocalKafka({ port: 0, home, heapMb: 768, serverProperties: { 'group.min.session.timeout.ms': 2_000 } });
    brokers = [own.brokers];
    process.on('exit', () => {
      try {
        process.kill(own!.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    });
  }
  log(`broker ${brokers.join(',')}`);
  const kafka = new Kafka({ clientId: 'vltava-fuzz', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const run = `fz${seed}-${Date.now().toString(36)}`;
  const cfg = fuzzTopicConfigs(DEFAULT_LIMITS);
  const topics = { commands: `${run}-commands`, balances: `${run}-balances`, journal: `${run}-journal`, rejections: `${run}-rejections` };
  const dlq = `${run}-dlq`;
  const entries = (c: Record<string, string>) => Object.entries(c).map(([name, value]) => ({ name, value }));
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: topics.commands, numPartitions: partitions, replicationFactor: 1, configEntries: entries(cfg.commands) },
      { topic: topics.balances, numPartitions: partitions, replicationFactor: 1 },
      { topic: topics.journal, numPartitions: partitions, replicationFactor: 1 },
      { topic: topics.rejections, numPartitions: partitions, replicationFactor: 1, configEntries: entries(cfg.rejections) },
      { topic: dlq, numPartitions: partitions, replicationFactor: 1 },
    ],
  });
  if (own) {
    // A fresh broker creates __consumer_offsets and __transaction_state (50 partitions each) on
    // first use, which took 24 s on a busy machine: done here, so that the app's start-up is not that.
    log('warming up the fresh broker (group and transaction coordinators)');
    const warm = kafka.producer({ transactionalId: `${run}-warmup`, idempotent: true, maxInFlightRequests: 1 });
    await warm.connect();
    const tx = await warm.transaction();
    await tx.send({ topic: dlq, messages: [] });
    await tx.abort();
    await warm.disconnect();
    const deadline = Date.now() + 180_000;
    for (;;) {
      try {
        await admin.fetchOffsets({ groupId: `${run}-warmup`, topics: [dlq] });
        break;
      } catch (e) {
        // GROUP_LOAD_IN_PROGRESS / COORDINATOR_NOT_AVAILABLE while __consumer_offsets loads.
        if ((e as { retriable?: boolean }).retriable !== true || Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    log('warm');
  }
  await admin.disconnect();
  log(`bad-input run: ${perKind} bad records of each of ${(kinds ?? ALL_KINDS).length} kinds among ${valid} valid commands, seed ${seed}, ${partitions} partitions`);
  let code = 1;
  try {
    const report = await runFuzz({
      kafka,
      brokers,
      topics,
      deadLetterTopic: dlq,
      applicationId: `${run}-app`,
      partitions,
      valid,
      perKind,
      seed,
      sessionTimeoutMs,
      catchUpMs: num('catch-up', 180) * 1000,
      ...(kinds ? { kinds } : {}),
      progress: log,
    });
    const command = `pnpm chaos --fuzz${args.filter((a) => a !== '--fuzz').length ? ` ${args.filter((a) => a !== '--fuzz').join(' ')}` : ''}`;
    const md = formatFuzzReport(report, command);
    console.log(`\n${md}\n`);
    if (!report.ok) console.log(`app log (last 40 lines):\n  ${report.appLog.slice(-40).join('\n  ')}`);
    if (reportFile) {
      appendFileSync(reportFile, `\n## Bad-input run (${new Date().toISOString().slice(0, 10)})\n\nWritten by \`${command}\` (tools/chaos/src/fuzz.ts; what it checks: [exactly-once.md](exactly-once.md#the-bad-input-run)).\n\n${md}\n`);
      console.log(`report appended to ${reportFile}`);
    }
    console.log(report.ok ? 'fuzz: PASS' : `fuzz: FAIL — ${report.violations.length} violation(s)`);
    code = report.ok ? 0 : 1;
  } catch (e) {
    console.error(`fuzz: FAIL — ${(e as Error).stack ?? String(e)}`);
  } finally {
    await release?.();
    if (own) await own.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  }
  return code;
}
