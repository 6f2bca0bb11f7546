/**
 * 1 vs N stream threads, back to back and alternating (so that the load of a shared machine drifts
 * over both alike): the word count, steady state. Each round is a fresh application on fresh topics:
 * it starts on an empty input and, once RUNNING with its final assignment (every thread with
 * tasks), the whole input arrives at once (written in one transaction: read_committed consumers see
 * it when it commits); the time is from that commit until the group's committed offsets reach the end
 * of the input and then of the repartition topic. Every round runs in a process of its own, so that
 * both start with cold code: an app on the calling thread of a long-lived process would run on
 * code the JIT had warmed in earlier rounds, while each new worker starts cold. Not shipped
 * (src/testing).
 *
 *   node packages/runtime/dist/testing/streamThreadsBench.js [--brokers host:port] [--lines 60000] [--rounds 3] [--threads 2]
 *
 * Without --brokers it uses the broker of `pnpm kafka:up` (or KAFKA_BROKERS).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { awaitCaughtUp } from '@vltava/kafka-local/testing';
import { resolveBrokers } from '@vltava/kafka-local';
import { KafkaStreams } from '../index.js';
import { corpus } from './wordCount.test.helper.js';

const { values: args } = parseArgs({
  options: {
    brokers: { type: 'string' },
    lines: { type: 'string', default: '60000' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
    /** Internal: run one round with this many threads and print its RESULT line. */
    child: { type: 'string' },
    round: { type: 'string', default: '1' },
    run: { type: 'string' },
  },
});
const brokers = args.brokers !== undefined ? [args.brokers] : (await resolveBrokers()).brokers;
const lines = corpus(Number(args.lines), 2_000, 17);
const words = lines.reduce((n, l) => n + l.split(' ').length, 0);
const threads = Number(args.threads);
const quiet = { info: () => undefined, warn: () => undefined, error: (m: string) => console.error(m) };

const kafka = new Kafka({ clientId: 'threads-bench', brokers, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
const run = args.run ?? `thb-${Date.now()}`;
if (args.child === undefined) console.log(`input per round: ${lines.length} lines, ${words} words, 4 partitions; brokers ${brokers.join(',')}`);
const peakRss = (): number => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;

async function until(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function once(n: number, round: number): Promise<number> {
  const applicationId = `${run}-t${n}-r${round}`;
  const input = `${applicationId}-lines`;
  const output = `${applicationId}-counts`;
  await admin.createTopics({ topics: [{ topic: input, numPartitions: 4 }, { topic: output, numPartitions: 4 }], waitForLeaders: true });
  const stateDir = mkdtempSync(join(tmpdir(), 'thb-'));
  const moduleUrl = new URL(`./wordCountModule.test.helper.js?input=${input}&output=${output}`, import.meta.url);
  const app = await KafkaStreams.fromModule(moduleUrl, { applicationId, brokers, stateDir, numStreamThreads: n, sessionTimeoutMs: 10_000, logger: quiet });
  await app.start();
  await until(() => {
    const ts = app.metadataForLocalThreads();
    return app.state === 'RUNNING' && ts.every((t) => t.activeTasks.length > 0) && ts.reduce((k, t) => k + t.activeTasks.length, 0) === 8;
  }, 'the final assignment');
  const producer = kafka.producer({ transactionalId: `${applicationId}-feeder`, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const txn = await producer.transaction();
  for (let i = 0; i < lines.length; i += 1_000) await txn.send({ topic: input, messages: lines.slice(i, i + 1_000).map((value, j) => ({ key: `l${i + j}`, value })) });
  const load = loadavg()[0]!.toFixed(1);
  await txn.commit();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const main0 = process.threadCpuUsage();
  await producer.disconnect();
  await awaitCaughtUp(admin, applicationId, input, 300_000, 20);
  await awaitCaughtUp(admin, applicationId, `${applicationId}-counts-repartition`, 300_000, 20);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const mainCpu = process.threadCpuUsage(main0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const tasks = app.metadataForLocalThreads().map((t) => t.activeTasks.join(' ')).join(' | ');
  const { commits } = app.metrics();
  await app.close();
  rmSync(stateDir, { recursive: true, force: true });
  await admin.deleteTopics({ topics: [input, output, `${applicationId}-counts-repartition`, `${applicationId}-counts-changelog`] }).catch(() => undefined);
  const rate = words / seconds;
  const cpuPerMillion = (cpuSeconds / words) * 1e6;
  console.error(
    `round ${round} threads ${n}: ${Math.round(rate)} words/s (${seconds.toFixed(2)} s), CPU ${cpuSeconds.toFixed(2)} s = ${cpuPerMillion.toFixed(1)} CPU-s per million words, ${(cpuSeconds / seconds).toFixed(2)} cores busy (main thread ${((mainCpu.user + mainCpu.system) / 1e6).toFixed(2)} s), ${commits} commits; load ${load} -> ${loadavg()[0]!.toFixed(1)}; tasks ${tasks}`,
  );
  console.log(`RESULT ${JSON.stringify({ rate, cpuPerMillion, busy: cpuSeconds / seconds, rss: peakRss() })}`);
  return rate;
}

if (args.child !== undefined) {
  await once(Number(args.child), Number(args.round));
  await admin.disconnect();
  process.exit(0);
}

interface Result {
  readonly rate: number;
  readonly cpuPerMillion: number;
  readonly busy: number;
  readonly rss: number;
}

function child(n: number, round: number): Result {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', String(n), '--round', String(round), '--run', run, '--lines', args.lines!, '--brokers', brokers[0]!], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = out.split('\n').find((l) => l.startsWith('RESULT '));
  if (line === undefined) throw new Error(`round ${round} with ${n} threads printed no result:\n${out}`);
  return JSON.parse(line.slice(7)) as Result;
}

const rates = new Map<number, number[]>([[1, []], [threads, []]]);
const cpuCost = new Map<number, number[]>([[1, []], [threads, []]]);
const busy = new Map<number, number[]>([[1, []], [threads, []]]);
const rss = new Map<number, number[]>([[1, []], [threads, []]]);
for (let r = 1; r <= Number(args.rounds); r++) {
  // Alternate which goes first, so neither always runs on the warmer broker.
  for (const n of r % 2 === 1 ? [1, threads] : [threads, 1]) {
    const res = child(n, r);
    rates.get(n)!.push(res.rate);
    cpuCost.get(n)!.push(res.cpuPerMillion);
    busy.get(n)!.push(res.busy);
    rss.get(n)!.push(res.rss);
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const m1 = median(rates.get(1)!);
const mN = median(rates.get(threads)!);
console.log(
  `median: 1 thread ${Math.round(m1)} words/s, ${median(cpuCost.get(1)!).toFixed(1)} CPU-s per million words, ${median(busy.get(1)!).toFixed(2)} cores busy; ` +
    `${threads} threads ${Math.round(mN)} words/s, ${median(cpuCost.get(threads)!).toFixed(1)} CPU-s per million words, ${median(busy.get(threads)!).toFixed(2)} cores busy; ` +
    `throughput ${(mN / m1).toFixed(2)}x; peak RSS ${Math.round(median(rss.get(1)!))} / ${Math.round(median(rss.get(threads)!))} MiB (CPU and RSS of the app's process, every thread; the broker's not counted)`,
);
await admin.disconnect();
