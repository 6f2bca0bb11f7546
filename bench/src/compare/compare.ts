/**
 * pnpm bench:compare — word count side by side on one local broker and one input:
 * (a) the broker's ceiling (ProducerPerformance plain and transactional, ConsumerPerformance read_committed),
 * (b) Kafka Streams (Java, same version as the broker) under exactly_once_v2 and at_least_once, 1 and 2 stream threads,
 * (c) @kafkats/flow under exactly_once (not in the default set), (d) Vltava under EOS and at-least-once,
 * 1 and 2 stream threads, then crash recovery (a store with N keys, kill -9, time to resume) for
 * Vltava and Kafka Streams. pnpm bench:soak (`--soak`): Vltava EOS at a steady rate for minutes, memory sampled.
 *
 * Options (all optional):
 *   --lines N            input lines (default 1,000,000; 10 words each)    --seed N (42)   --vocab N (10,000)
 *   --partitions N       input/output/repartition partitions (default 4)
 *   --only a,b           exact run ids (see runs.ts; an unknown one fails listing them), `prefix*`, `default`, `all`
 *   --recovery-keys N,M  store sizes for the crash-recovery runs (default 100,000)
 *   --latency-rate N     lines/s in the latency phase (default 200)   --latency-seconds N (default 10)
 *   --timeout-sec N      give up on a word-count run after N s (default: 60 + words / --min-words-per-sec)
 *   --min-words-per-sec N  the slowest rate the default timeout allows (default 20,000)
 *   --stall-sec N        give up on a run whose output made no progress for N s (default 90)
 *   --flow-timeout-sec N (default 240): @kafkats/flow is far slower; its rate is estimated from the count updates by then
 *   --profile            also run Vltava EOS 100 ms under node --cpu-prof and print the top costs
 *   --kafkajs-fix        add the vltava-fix-* runs (kafkajs' O(n²) producer grouping replaced by an O(n) one in the app process)
 *   --vltava-heap-mb N   Node's heap limit for the Vltava processes (--max-old-space-size; default 256, 0: Node's default),
 *                        the counterpart of Kafka Streams' -Xmx1g; --vltava-node-flags=<flags> adds Node flags
 *   --results FILE       results file to merge into (default bench/results/compare.json); with another file the
 *                        report goes to FILE with .md instead of docs/benchmarks.md (scratch runs)
 *   --no-record          write neither the results file nor the report
 *   --report-only        only rewrite the report and the chart from the results file
 *   --estimate           only print the selected runs and the time estimate
 *   --soak               the soak instead of the comparison: --soak-minutes N (3), --soak-rate lines/s (1,000),
 *                        --soak-vocab N,M (10000,1000000,1000000:point-only: a vocabulary of 100,000 or more is sent word after
 *                        word, so the store reaches 1M keys; `:point-only` declares the count store with rangeScans: false)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createTopicsAndWait, DEFAULT_KAFKA_VERSION, ensureJars, startLocalKafka } from '@vltava/kafka-local';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { AppConfig } from './appConfig.js';
import { CountsVerifier, liveChildren, datasetLines, inputProducer, kafkaClient, percentile, rng, sleep, startChild, writeLines, type Child, type DatasetSpec } from './harness.js';
import { consumerPerf, ensureStreamsJars, producerPerf, type StreamsJars } from './jvm.js';
import { analyzeProfile } from './profile.js';
import { recordReport } from './reportCompare.js';
import { emptyResults, loadResults, ratiosOf, resultKey, saveMerged, type CeilingResult, type Invocation, type RecoveryResult, type ResultKind, type ResultsFile, type RunResult, type StoredResult } from './results.js';
import { RUNS, SelectionError, selectRuns, type RunDef } from './runs.js';
import { runSoak } from './soak.js';

const { values: opt } = parseArgs({
  options: {
    lines: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '42' },
    vocab: { type: 'string', default: '10000' },
    'words-per-line': { type: 'string', default: '10' },
    partitions: { type: 'string', default: '4' },
    only: { type: 'string', default: '' },
    'recovery-keys': { type: 'string', default: '100000' },
    'latency-rate': { type: 'string', default: '200' },
    'latency-seconds': { type: 'string', default: '10' },
    'timeout-sec': { type: 'string' },
    'min-words-per-sec': { type: 'string', default: '20000' },
    'stall-sec': { type: 'string', default: '90' },
    'flow-timeout-sec': { type: 'string', default: '240' },
    profile: { type: 'boolean', default: false },
    results: { type: 'string' },
    'no-record': { type: 'boolean', default: false },
    'report-only': { type: 'boolean', default: false },
    'kafkajs-fix': { type: 'boolean', default: false },
    'vltava-heap-mb': { type: 'string', default: '256' },
    'vltava-node-flags': { type: 'string', default: '' },
    soak: { type: 'boolean', default: false },
    estimate: { type: 'boolean', default: false },
    'soak-minutes': { type: 'string', default: '3' },
    'soak-rate': { type: 'string', default: '1000' },
    'soak-vocab': { type: 'string', default: '10000,1000000,1000000:point-only' },
  },
});

const num = (s: string | undefined): number => Number(String(s).replace(/[_,]/g, ''));
const spec: DatasetSpec = { lines: num(opt.lines), wordsPerLine: num(opt['words-per-line']), vocab: num(opt.vocab), seed: num(opt.seed) };
const PARTITIONS = num(opt.partitions);
const LAT_RATE = num(opt['latency-rate']);
const LAT_SECONDS = num(opt['latency-seconds']);
const TIMEOUT_MS = opt['timeout-sec'] !== undefined ? num(opt['timeout-sec']) * 1000 : (60 + (spec.lines * spec.wordsPerLine) / num(opt['min-words-per-sec'])) * 1000;
const SESSION_MS = 10_000;
/** The broker's minimum: after kill -9 the dead member leaves the group only after it. */
const RECOVERY_SESSION_MS = 6_000;
const CEILING_TIMEOUT_MS = 180_000;
const STALL_MS = num(opt['stall-sec']) * 1000;
const LATENCY_DRAIN_MS = 60_000;
const version = process.env.KAFKA_VERSION ?? DEFAULT_KAFKA_VERSION;
const log = (m: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);
const load = (): [number, number, number] => loadavg().map((x) => Math.round(x * 100) / 100) as [number, number, number];

for (const [name, v] of [['--lines', spec.lines], ['--words-per-line', spec.wordsPerLine], ['--vocab', spec.vocab], ['--partitions', PARTITIONS], ['--latency-rate', LAT_RATE], ['--latency-seconds', LAT_SECONDS]] as const)
  if (!Number.isInteger(v) || v <= 0) fail(`${name} must be a positive integer (got ${String(v)})`);

// ---- selection: exact ids, checked before anything starts -------------------------------------
let selection: RunDef[];
try {
  selection = opt.soak ? [] : selectRuns(opt.only, { kafkajsFix: opt['kafkajs-fix'] });
} catch (e) {
  if (e instanceof SelectionError) fail(e.message);
  throw e;
}
const selectedIds = new Set(selection.map((r) => r.id));
const selected = (id: string): boolean => selectedIds.has(id);

const specKey = `${spec.lines}x${spec.wordsPerLine} vocab ${spec.vocab} seed ${spec.seed}, ${PARTITIONS} partitions`;
const DEFAULT_DATASET = '1000000x10 vocab 10000 seed 42, 4 partitions';
const defaultResults = fileURLToPath(new URL('../../results/compare.json', import.meta.url));
const resultsPath = opt.results ? resolve(opt.results) : defaultResults;
const scratch = resultsPath !== defaultResults;
const reportTarget = {
  markdown: scratch ? resultsPath.replace(/\.json$/, '') + '.md' : fileURLToPath(new URL('../../../docs/benchmarks.md', import.meta.url)),
  svg: scratch ? resultsPath.replace(/\.json$/, '') + '-compare.svg' : fileURLToPath(new URL('../../../docs/benchmarks-compare.svg', import.meta.url)),
  dataset: DEFAULT_DATASET,
};
/** The legacy (schema 1) file has no dates: its figures are those of its last commit. */
const legacyDate = (): string => spawnSyncText('git', ['log', '-1', '--format=%cI', '--', resultsPath]).trim() || new Date().toISOString();

if (opt['report-only']) {
  recordReport(loadResults(resultsPath, legacyDate), reportTarget);
  log(`report written to ${reportTarget.markdown} from ${resultsPath}`);
  process.exit(0);
}

const startedAt = new Date();
const commit = spawnSyncText('git', ['rev-parse', '--short', 'HEAD']).trim() + (spawnSyncText('git', ['status', '--porcelain', '--', 'packages', 'bench/src']).trim() ? '+local changes' : '');
const invocation: Invocation = {
  id: `${startedAt.toISOString()}-${process.pid}`,
  date: startedAt.toISOString(),
  commit,
  command: `pnpm bench:compare ${process.argv.slice(2).join(' ')}`.trim(),
  machine: `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, load avg at start ${load().join(' / ')}`,
  versions: {
    node: process.version,
    kafka: version,
    'kafka-streams': version,
    java: javaVersion(),
    '@kafkats/flow': pkgVersion('@kafkats/flow'),
    kafkajs: pkgVersion('kafkajs'),
  },
};
/** This invocation's results only: merged into the file after each result. */
const mine: ResultsFile = emptyResults();
mine.invocations[invocation.id] = invocation;
/** Set by SIGINT/SIGTERM: the run under way was cut short, its result is not one. */
let interrupted = false;
function record<K extends ResultKind>(kind: K, runId: string, result: StoredResult<K>['result'], dataset = specKey): void {
  if (interrupted) return;
  const at = new Date().toISOString();
  mine.results[resultKey(dataset, runId)] = { runId, dataset, kind, invocation: invocation.id, at, result } as StoredResult;
  for (const r of ratiosOf(mine, invocation.id)) mine.ratios[resultKey(r.dataset, r.ratioId)] = r;
  if (!opt['no-record']) saveMerged(resultsPath, mine, legacyDate);
}

// ---- the estimate ------------------------------------------------------------------------------
const recoveryKeys = opt['recovery-keys'] ? opt['recovery-keys'].split(',').map(num).filter((n) => n > 0) : [];
const words = spec.lines * spec.wordsPerLine;
const known = loadResults(resultsPath, legacyDate);
function estimateSeconds(r: RunDef): number {
  if (r.kind === 'ceiling') return Math.max(1_000_000, spec.lines) / 150_000 + 10;
  if (r.kind === 'floor') return LAT_SECONDS + 10;
  if (r.kind === 'recovery') return recoveryKeys.reduce((s, k) => s + k / 20_000 + 30, 0);
  // The latest finished run of this id (any dataset): its start-up (to the first output) plus this
  // dataset's words at its rate after the first output; else the catalogue's assumed rate.
  const prev = Object.values(known.results)
    .filter((x): x is StoredResult<'wordcount'> => x.kind === 'wordcount' && x.runId === r.id && x.result.ok && Number.isFinite(x.result.steadyWordsPerSec))
    .sort((a, b) => b.at.localeCompare(a.at))[0]?.result;
  const run = prev ? Math.max(0, prev.seconds - prev.words / prev.steadyWordsPerSec) + words / prev.steadyWordsPerSec : 10 + words / (r.assumedWordsPerSec ?? 20_000);
  const base = r.group === 'flow' ? Math.min(TIMEOUT_MS / 1000, num(opt['flow-timeout-sec'])) : Math.min(TIMEOUT_MS / 1000, run);
  return base + 5 + LAT_SECONDS + 5;
}
if (opt.soak) {
  const variants = soakVariants();
  log(`soak: Vltava EOS 100 ms at ${num(opt['soak-rate'])} lines/s for ${num(opt['soak-minutes'])} min per variant (vocabularies ${variants.map((v) => `${v.vocab}${v.pointOnly ? ' point-only' : ''}`).join(', ')}): about ${Math.ceil(variants.length * (num(opt['soak-minutes']) + 1))} min`);
} else {
  const est = selection.map((r) => [r.id, estimateSeconds(r)] as const);
  const total = est.reduce((s, [, x]) => s + x, 0) + spec.lines / 40_000 + 20;
  log(`runs (${selection.length}): ${selection.map((r) => r.id).join(', ')}`);
  log(`estimate: about ${Math.ceil(total / 60)} min (${est.map(([id, x]) => `${id} ${Math.round(x)} s`).join(', ')}, input ${Math.round(spec.lines / 40_000)} s; rates from the latest results of ${resultsPath} where there are some); word-count runs time out after ${Math.round(TIMEOUT_MS / 1000)} s, ceilings after ${CEILING_TIMEOUT_MS / 1000} s`);
}
if (opt.estimate) process.exit(0);

// ---- the broker --------------------------------------------------------------------------------
const work = mkdtempSync(join(tmpdir(), 'vltava-compare-'));
const appDist = (name: string): string => fileURLToPath(new URL(`./${name}.js`, import.meta.url));
const kafkaLib = ensureJars(version, undefined, log);
// The Kafka Streams jars are loaded whenever a selected run needs them, whatever selected it.
const wantsStreams = selection.some((r) => r.group === 'kstreams');
const streamsJars: StreamsJars | undefined = wantsStreams ? ensureStreamsJars(version, log) : undefined;

log(`starting a broker (Kafka ${version}) on a free port, home ${work}`);
const broker = await startLocalKafka({ version, port: 0, home: join(work, 'kafka'), heapMb: 1024 });
const brokers = broker.brokers;
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    interrupted = true;
    log(`${sig}: stopping the apps and the broker; the run under way is not recorded`);
    for (const c of liveChildren) c.kill('SIGKILL');
    // The results of the runs that finished are in the file already (merged after each); the report too.
    if (!opt['no-record'] && Object.keys(mine.results).length > 0) {
      recordReport(loadResults(resultsPath, legacyDate), reportTarget);
      log(`report rewritten from ${resultsPath} (the runs that finished)`);
    }
    void broker.stop(5_000).finally(() => process.exit(130));
  });
log(`broker at ${brokers} (pid ${broker.pid})`);
const kafka: Kafka = kafkaClient(brokers);
const admin: Admin = kafka.admin();
await admin.connect();
const producer: Producer = await inputProducer(kafka);
async function newTopics(...topics: string[]): Promise<void> {
  await createTopicsAndWait(admin, topics.map((topic) => ({ topic, numPartitions: PARTITIONS, replicationFactor: 1 })));
}
/**
 * An app's output topic: broker timestamps (LogAppendTime), so the harness can tell how long after
 * the broker appended a count it read it (the apps stamp outputs with the input's timestamp).
 */
async function outputTopic(topic: string): Promise<void> {
  await createTopicsAndWait(admin, [{ topic, numPartitions: PARTITIONS, replicationFactor: 1, configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }] }]);
}

if (opt.soak) {
  for (const { vocab, pointOnly } of soakVariants()) {
    const s = await runSoak({ kafka, admin, producer, brokers, work, partitions: PARTITIONS, log, appPath: appDist('vltavaApp'), nodeFlags: vltavaNodeFlags(), newTopics }, { vocab, linesPerSec: num(opt['soak-rate']), wordsPerLine: spec.wordsPerLine, seconds: num(opt['soak-minutes']) * 60, seed: spec.seed, pointOnly });
    record('soak', `soak-vocab-${vocab}${pointOnly ? '-point-only' : ''}`, s, `soak ${PARTITIONS} partitions`);
    log(`${s.label}: ${s.ok ? 'correct' : 'FAILED'}; RSS ${s.rssWarmMb.toFixed(0)} MiB at warm-up end, max ${s.rssMaxMb.toFixed(0)} MiB, slope ${s.rssSlopeMbPerMin.toFixed(1)} MiB/min; heap max ${s.heapMaxMb.toFixed(0)} MiB, slope ${s.heapSlopeMbPerMin.toFixed(1)} MiB/min; ${s.note}`);
  }
  await finish();
}

// ---- input: written once -------------------------------------------------------------------
const INPUT = 'compare-input';
await newTopics(INPUT);
const ref = new Map<string, number>();
let inputLines = 0;
let inputWords = 0;
let inputBytes = 0;
function* counted(lines: Iterable<string>): Generator<string> {
  for (const l of lines) {
    for (const w of l.split(' ')) ref.set(w, (ref.get(w) ?? 0) + 1);
    inputLines++;
    inputWords += spec.wordsPerLine;
    inputBytes += Buffer.byteLength(l);
    yield l;
  }
}
if (selection.some((r) => r.kind !== 'recovery')) {
  const t0 = performance.now();
  await writeLines(producer, INPUT, PARTITIONS, counted(datasetLines(spec)));
  const s = (performance.now() - t0) / 1000;
  log(`input: ${inputLines} lines, ${inputWords} words, ${ref.size} distinct, ${(inputBytes / 2 ** 20).toFixed(1)} MiB written in ${s.toFixed(1)} s (idempotent kafkajs producer)`);
}
const recordSize = Math.max(1, Math.round(inputBytes / Math.max(1, inputLines)));

// ---- (a) the broker's ceiling ----------------------------------------------------------------
const ceilingRecords = Math.max(1_000_000, spec.lines);
let txnTopicWritten = false;
async function ceiling(id: string, label: string, fn: () => CeilingResult): Promise<void> {
  if (!selected(id)) return;
  log(`${label} ...`);
  try {
    const r = fn();
    record('ceiling', id, r);
    log(`${label}: ${Math.round(r.recordsPerSec)} records/s ${r.note}`);
  } catch (e) {
    log(`${label} failed: ${(e as Error).message}`);
  }
}
for (const [id, txn] of [['ceiling-produce', undefined], ['ceiling-produce-txn', 100]] as const) {
  const topic = `perf-${id}`;
  if (selected(id)) await newTopics(topic);
  await ceiling(id, txn ? `ProducerPerformance, transactional (--transaction-duration-ms ${txn})` : 'ProducerPerformance, plain', () => {
    const p = producerPerf(kafkaLib, brokers, topic, ceilingRecords, recordSize, txn, CEILING_TIMEOUT_MS);
    if (txn) txnTopicWritten = true;
    return { label: txn ? `broker ceiling: produce, transactional (${txn} ms transactions)` : 'broker ceiling: produce, plain', recordsPerSec: p.recordsPerSec, load: load(), note: `${ceilingRecords} records of ${recordSize} B, acks=all; ${p.mbPerSec} MB/s; latency p50 ${p.p50Ms} ms, p99 ${p.p99Ms} ms` };
  });
}
await ceiling('ceiling-consume', 'ConsumerPerformance, read_committed', () => {
  // Reads what the transactional ProducerPerformance wrote in this invocation (or the input topic).
  const txnTopic = txnTopicWritten ? 'perf-ceiling-produce-txn' : INPUT;
  const n = txnTopic === INPUT ? inputLines : ceilingRecords;
  const c = consumerPerf(kafkaLib, brokers, txnTopic, n, work, CEILING_TIMEOUT_MS);
  return { label: 'broker ceiling: consume, read_committed', recordsPerSec: c.recordsPerSec, load: load(), note: `${n} transactional records of ${txnTopic}; ${c.mbPerSec} MB/s; ${Math.round(c.fetchRecordsPerSec)} records/s excluding the group join` };
});

// ---- the harness's own latency: the same producer and reader, no app in between ----------------
if (selected('latency-floor')) {
  const topic = 'latency-floor';
  await newTopics(topic);
  const verifier = new CountsVerifier(new Map());
  await verifier.start(kafka, topic);
  const one = Buffer.alloc(8);
  one.writeBigInt64BE(1n);
  try {
    // A first record read back: the reader has joined its group before the clock runs.
    verifier.expect('zfwarm', 1);
    await producer.send({ topic, acks: -1, messages: [{ key: 'zfwarm', value: one, partition: 0 }] });
    if (!(await verifier.until(30_000))) throw new Error('the floor reader did not read its first record in 30 s');
    const total = Math.round(LAT_RATE * LAT_SECONDS);
    const t0 = performance.now();
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * LAT_RATE) + 1);
      const msgs: { key: string; value: Buffer; partition: number }[] = [];
      for (; sent < due; sent++) {
        const w = `zf${sent}`;
        verifier.expect(w, 1);
        verifier.markerSentAt(w, performance.now());
        msgs.push({ key: w, value: one, partition: sent % PARTITIONS });
      }
      if (msgs.length) await producer.send({ topic, acks: -1, messages: msgs });
      await sleep(10);
    }
    const done = await verifier.until(LATENCY_DRAIN_MS);
    const lat = [...verifier.latencies].sort((a, b) => a - b);
    const f = { label: "the harness's own latency: produce → read_committed read, no app", p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), p999Ms: percentile(lat, 99.9), samples: lat.length, rate: LAT_RATE, load: load(), note: `${lat.length} marker records at ${LAT_RATE}/s, the latency phase's producer (idempotent, acks=all) and reader (kafkajs, read_committed, 50 ms max wait)${done ? '' : '; NOT all read back'}` };
    record('floor', 'latency-floor', f);
    log(`${f.label}: p50 ${f.p50Ms.toFixed(0)} ms, p99 ${f.p99Ms.toFixed(0)} ms, p999 ${f.p999Ms.toFixed(0)} ms`);
  } catch (e) {
    log(`latency floor failed: ${(e as Error).message}`);
  } finally {
    await verifier.stop();
  }
}

// ---- (b), (c), (d): word count ---------------------------------------------------------------
let runNo = 0;

/** App log lines that look like errors (kafkajs' per-response ERROR lines are counted, not printed). */
const isErrorLine = (l: string): boolean => /ERROR|Exception|error/.test(l) && !/TimeoutNegativeWarning|--trace-warnings|switched default partitioner/.test(l);
const childLog = (id: string) => (l: string): void => {
  if (isErrorLine(l) && !/kafkajs Connection: Response/.test(l)) console.log(`  [${id}] ${l.slice(0, 300)}`);
};
function errorSummary(child: Child): string[] {
  const errs = child.lines.filter(isErrorLine);
  if (errs.length === 0) return [];
  const kinds = new Map<string, number>();
  for (const e of errs) {
    const k = e.replace(/^.*?(KafkaJS\w+: |kafkajs \w+: |ERROR )/, '$1').replace(/\d+_\d+ /, '').slice(0, 90);
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
  }
  return [`app log: ${[...kinds].sort((a, b) => b[1] - a[1]).slice(0, 2).map(([k, n]) => `${n}× "${k}"`).join(', ')}`];
}

/**
 * Node's heap limit for the Vltava processes (`--vltava-heap-mb`, default 256; 0: Node's default),
 * the counterpart of Kafka Streams' -Xmx: without one V8 lets garbage pile up far past the live heap.
 */
function vltavaNodeFlags(): string[] {
  const mb = num(opt['vltava-heap-mb']);
  const extra = (opt['vltava-node-flags'] ?? '').split(/\s+/).filter(Boolean);
  return [...(mb > 0 ? [`--max-old-space-size=${mb}`] : []), ...extra];
}

function launch(r: RunDef, cfg: AppConfig, profileDir?: string): Child {
  if (r.group === 'kstreams') {
    if (!streamsJars) throw new Error(`${r.id} needs the Kafka Streams jars, which were not loaded`);
    return startChild(
      'java',
      ['-Xmx1g', '-Dorg.slf4j.simpleLogger.defaultLogLevel=error', '-cp', `${streamsJars.lib}/*:${streamsJars.classes}`, 'WordCount', cfg.brokers, cfg.applicationId, cfg.inputTopic, cfg.outputTopic, cfg.guarantee === 'exactly-once' ? 'exactly_once_v2' : 'at_least_once', String(cfg.commitIntervalMs), cfg.stateDir, String(cfg.sessionTimeoutMs), String(cfg.threads ?? 1)],
      { log: childLog(r.id) },
    );
  }
  return startChild(
    process.execPath,
    [...(r.group === 'flow' ? [] : vltavaNodeFlags()), ...(r.kafkajsFix ? ['--require', kafkajsFixPreload()] : []), ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), appDist(r.group === 'flow' ? 'flowApp' : 'vltavaApp'), JSON.stringify(cfg)],
    { log: childLog(r.id) },
  );
}

/**
 * A `--require` preload that replaces kafkajs' producer/groupMessagesPerPartition.js (which copies the
 * partition's array for every message: O(n²) per sendBatch, tulios/kafkajs#1576) with an O(n) version,
 * in the app process only. It shows what the fix would buy; the runtime itself is unchanged.
 */
function kafkajsFixPreload(): string {
  const file = join(work, 'kafkajs-grouping-fix.cjs');
  const runtimeDir = fileURLToPath(new URL('../../../packages/runtime/', import.meta.url));
  writeFileSync(
    file,
    `const Module = require('node:module');
const path = require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js', { paths: [${JSON.stringify(runtimeDir)}] });
const m = new Module(path);
m.filename = path;
m.loaded = true;
m.exports = ({ topic, partitionMetadata, messages, partitioner }) => {
  if (partitionMetadata.length === 0) return {};
  const result = {};
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    (result[partition] ??= []).push(message);
  }
  return result;
};
require.cache[path] = m;
`,
  );
  return file;
}

/** Paced lines with a unique marker word each; the reference and the verifier learn them before they are sent. */
async function latencyPhase(verifier: CountsVerifier, tag: string): Promise<void> {
  const rand = rng(spec.seed + runNo * 7919);
  const total = Math.round(LAT_RATE * LAT_SECONDS);
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * LAT_RATE) + 1);
    const msgs: { value: string; partition: number }[] = [];
    for (; sent < due; sent++) {
      const marker = `zq${tag}x${sent}`;
      const ws = [marker];
      for (let i = 1; i < spec.wordsPerLine; i++) ws.push(`w${Math.floor(spec.vocab * rand() ** 3).toString(36)}`);
      for (const w of ws) {
        const n = (ref.get(w) ?? 0) + 1;
        ref.set(w, n);
        verifier.expect(w, n);
      }
      verifier.markerSentAt(marker, performance.now());
      msgs.push({ value: ws.join(' '), partition: sent % PARTITIONS });
      inputLines++;
      inputWords += ws.length;
    }
    if (msgs.length) await producer.send({ topic: INPUT, acks: -1, messages: msgs });
    await sleep(10);
  }
}

async function wordCount(r: RunDef, profileDir?: string): Promise<RunResult> {
  runNo++;
  const appId = `${r.id}-${runNo}-${Date.now().toString(36)}`;
  const cfg: AppConfig = {
    brokers,
    applicationId: appId,
    inputTopic: INPUT,
    outputTopic: `${appId}-out`,
    guarantee: r.guarantee!,
    commitIntervalMs: r.commitMs!,
    stateDir: mkdtempSync(join(work, 'state-')),
    sessionTimeoutMs: SESSION_MS,
    threads: r.threads ?? 1,
    ...(r.group === 'flow' ? { repartitionTopic: `${appId}-words` } : {}),
  };
  await outputTopic(cfg.outputTopic);
  if (cfg.repartitionTopic) await newTopics(cfg.repartitionTopic);
  const lines0 = inputLines;
  const words0 = inputWords;
  const verifier = new CountsVerifier(new Map(ref));
  await verifier.start(kafka, cfg.outputTopic);
  log(`${r.label}: ${lines0} lines / ${words0} words in the input ...`);
  const t0 = performance.now();
  const child = launch(r, cfg, profileDir);
  const base = { label: r.label, group: r.group!, guarantee: r.guarantee!, commitMs: r.commitMs!, threads: r.threads ?? 1, lines: lines0, words: words0, latencyRate: LAT_RATE };
  const progress = setInterval(() => log(`  ${r.id}: ${verifier.outputs} outputs read, ${verifier.remaining} words not yet at their final count, RSS ${(child.peakRss() / 2 ** 20).toFixed(0)} MiB`), 15_000);
  try {
    const timeoutMs = r.group === 'flow' ? Math.min(TIMEOUT_MS, num(opt['flow-timeout-sec']) * 1000) : TIMEOUT_MS;
    // A hung run must not eat the budget: it ends at its timeout or after STALL_MS without new output.
    let stalled = false;
    let seen = -1;
    let since = performance.now();
    let stallTimer: NodeJS.Timeout | undefined;
    const stall = new Promise<boolean>((resolve) => {
      stallTimer = setInterval(() => {
        if (verifier.outputs !== seen) {
          seen = verifier.outputs;
          since = performance.now();
        } else if (performance.now() - since > STALL_MS && performance.now() - t0 > 60_000) {
          stalled = true;
          resolve(false);
        }
      }, 1_000);
    });
    const done = await Promise.race([verifier.until(timeoutMs), child.exited.then(() => false), stall]);
    clearInterval(stallTimer);
    const seconds = ((done ? verifier.lastOutputAt : performance.now()) - t0) / 1000;
    if (!done) {
      const why = child.proc.exitCode !== null || child.proc.signalCode !== null ? `process exited (${child.proc.exitCode ?? child.proc.signalCode}): ${child.lines.slice(-3).map((l) => l.slice(0, 160)).join(' | ')}` : stalled ? `no new output for ${STALL_MS / 1000} s (stopped after ${seconds.toFixed(0)} s)` : `stopped after ${timeoutMs / 1000} s`;
      // Not finished: estimate the rate from the count updates read (one per input word when the app has no cache).
      const wps = verifier.outputs / seconds;
      let stage1 = '';
      if (cfg.repartitionTopic) {
        const ends = await admin.fetchTopicOffsets(cfg.repartitionTopic).catch(() => []);
        stage1 = `; ${ends.reduce((n, p) => n + Number(p.high), 0)} offsets in its repartition topic (words through the first stage, incl. transaction markers)`;
      }
      return { ...base, ok: false, seconds, linesPerSec: wps / spec.wordsPerLine, wordsPerSec: wps, steadyWordsPerSec: NaN, p50Ms: NaN, p99Ms: NaN, p999Ms: NaN, latencySamples: 0, peakRssMb: child.peakRss() / 2 ** 20, load: load(), note: [`did not finish: ${why}; ${verifier.outputs} count updates read, rate estimated from them${stage1}; ${verifier.remaining} words not at their final count yet (e.g. ${verifier.wrong(2).join('; ')})${verifier.overshoot.size ? `; ${verifier.overshoot.size} words counted too often` : ''}`, ...errorSummary(child)].join('; ') };
    }
    const firstOutS = ((verifier.firstOutputAt ?? t0) - t0) / 1000;
    const readLagMs = verifier.lastReadLagMs;
    log(`  ${r.id}: input counted in ${seconds.toFixed(1)} s (${Math.round(words0 / seconds)} words/s, first output after ${firstOutS.toFixed(1)} s); latency phase ...`);
    await latencyPhase(verifier, String(runNo));
    const done2 = await verifier.until(LATENCY_DRAIN_MS);
    const stable = done2 && (await verifier.stable(2_000));
    const lat = [...verifier.latencies].sort((a, b) => a - b);
    const peak = child.peakRss() / 2 ** 20;
    const problems = [
      ...(stable ? [] : [`counts differ from the reference${done2 ? '' : ` ${LATENCY_DRAIN_MS / 1000} s after the latency phase`}: ${verifier.wrong(3).join('; ')}`]),
      ...(verifier.overshoot.size ? [`${verifier.overshoot.size} words counted too often (duplicates)`] : []),
      ...(verifier.unexpected.length ? [`${verifier.unexpected.length} unexpected words`] : []),
    ];
    return {
      ...base,
      ok: problems.length === 0,
      seconds,
      linesPerSec: lines0 / seconds,
      wordsPerSec: words0 / seconds,
      steadyWordsPerSec: words0 / (seconds - firstOutS),
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      p999Ms: percentile(lat, 99.9),
      latencySamples: lat.length,
      peakRssMb: peak,
      load: load(),
      note: [`first output after ${firstOutS.toFixed(1)} s`, `the harness read the last count ${Math.round(readLagMs)} ms after the broker appended it`, `latency over ${lat.length} marker lines at ${LAT_RATE} lines/s`, ...problems, ...errorSummary(child)].join('; '),
    };
  } finally {
    clearInterval(progress);
    await child.stop();
    saveLog(r.id, child);
    await verifier.stop();
    rmSync(cfg.stateDir, { recursive: true, force: true });
  }
}

for (const r of selection) {
  if (r.kind !== 'wordcount') continue;
  const x = await wordCount(r);
  if (interrupted) break;
  record('wordcount', r.id, x);
  log(`${r.label}: ${x.ok ? 'correct' : 'FAILED'}, ${Math.round(x.wordsPerSec)} words/s (${Math.round(x.steadyWordsPerSec)} after the first output) (${Math.round(x.linesPerSec)} lines/s), p50 ${x.p50Ms.toFixed(0)} ms, p99 ${x.p99Ms.toFixed(0)} ms, p999 ${(x.p999Ms ?? NaN).toFixed(0)} ms, peak RSS ${x.peakRssMb.toFixed(0)} MiB, load ${x.load.join(' ')}; ${x.note}`);
}

// ---- profile -----------------------------------------------------------------------------------
if (opt.profile) {
  const dir = mkdtempSync(join(work, 'prof-'));
  const r = RUNS.find((s) => s.id === (opt['kafkajs-fix'] ? 'vltava-fix-eos-100' : 'vltava-eos-100'))!;
  const x = await wordCount({ ...r, id: `${r.id}-profiled` }, dir);
  log(`profiled run: ${Math.round(x.wordsPerSec)} words/s (profiling overhead included)`);
  const p = { ...analyzeProfile(dir), wordsPerSec: x.wordsPerSec, load: load() };
  record('profile', opt['kafkajs-fix'] ? 'profile-fixed' : 'profile', p);
  for (const row of p.top) log(`  ${row.selfPct.toFixed(1)}%  ${row.name}  ${row.where}`);
}

// ---- crash recovery --------------------------------------------------------------------------
for (const keys of recoveryKeys) {
  const targets = selection.filter((r) => r.kind === 'recovery');
  if (targets.length === 0) break;
  const topic = `recovery-${keys}-input`;
  await newTopics(topic);
  const recRef = new Map<string, number>();
  function* keyLines(): Generator<string> {
    for (let i = 0; i < keys; i++) {
      const w = `k${i.toString(36)}`;
      recRef.set(w, 1);
      yield w;
    }
  }
  const tw = performance.now();
  await writeLines(producer, topic, PARTITIONS, keyLines());
  log(`recovery input: ${keys} distinct words written in ${((performance.now() - tw) / 1000).toFixed(1)} s`);
  for (const t of targets) {
    const system = t.group === 'kstreams' ? 'kstreams' : 'vltava';
    const id = `recovery-${system}${system === 'vltava' && opt['kafkajs-fix'] ? '-fix' : ''}-${keys}`;
    const r = await recovery(system, keys, topic, recRef);
    record('recovery', id, r);
    log(`${r.label}: ${r.ok ? '' : 'FAILED '}resume ${r.resumeMs.toFixed(0)} ms (restored ${r.restoredRecords} records in ${r.restoreMs} ms); ${r.note}`);
  }
}

async function recovery(system: 'vltava' | 'kstreams', keys: number, topic: string, recRef: Map<string, number>): Promise<RecoveryResult> {
  runNo++;
  const appId = `recovery-${system}-${runNo}-${Date.now().toString(36)}`;
  const cfg: AppConfig = { brokers, applicationId: appId, inputTopic: topic, outputTopic: `${appId}-out`, guarantee: 'exactly-once', commitIntervalMs: 100, stateDir: mkdtempSync(join(work, 'state-')), sessionTimeoutMs: RECOVERY_SESSION_MS };
  await newTopics(cfg.outputTopic);
  const fix = system === 'vltava' && opt['kafkajs-fix'];
  const def: RunDef = { id: `recovery-${system}`, kind: 'recovery', label: system, group: system, inDefault: false, ...(fix ? { kafkajsFix: true } : {}) };
  const label = `${system === 'vltava' ? (fix ? 'Vltava + O(n) kafkajs grouping' : 'Vltava') : 'Kafka Streams'}, EOS, resume after kill -9 with ${keys.toLocaleString('en-US')} keys`;
  const fillTimeoutMs = (60 + keys / 10_000) * 1000;
  const resumeTimeoutMs = 120_000;
  const verifier = new CountsVerifier(new Map(recRef));
  await verifier.start(kafka, cfg.outputTopic);
  const t0 = performance.now();
  let child = launch(def, cfg);
  try {
    const filled = await Promise.race([verifier.until(fillTimeoutMs), child.exited.then(() => false)]);
    const fillS = (performance.now() - t0) / 1000;
    if (!filled) return { label, keys, ok: false, resumeMs: NaN, restoredRecords: 0, restoreMs: 0, load: load(), note: [`store never filled: ${verifier.remaining} keys wrong after ${fillS.toFixed(0)} s, e.g. ${verifier.wrong(4).join('; ')}`, ...errorSummary(child)].join('; ') };
    log(`  ${system}: ${keys} keys counted in ${fillS.toFixed(1)} s; kill -9 in 3 s`);
    await sleep(3_000);
    child.kill9();
    await child.exited;
    // Restart, and send one probe line per input partition: resumed = every probe counted and committed.
    const t1 = performance.now();
    child = launch(def, cfg);
    const probes: { value: string; partition: number }[] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      const w = `zr${runNo}x${p}`;
      verifier.expect(w, 1);
      recRef.set(w, 1); // the next system reads the same topic
      verifier.markerSentAt(w, t1);
      probes.push({ value: w, partition: p });
    }
    await producer.send({ topic, acks: -1, messages: probes });
    const resumed = await Promise.race([verifier.until(resumeTimeoutMs), child.exited.then(() => false)]);
    const resumeMs = verifier.lastOutputAt - t1;
    await child.waitFor(/^RESTORED /, 1_000);
    const restored = child.lines.filter((l) => l.startsWith('RESTORED ')).map((l) => l.split(' '));
    const restoredRecords = restored.reduce((s, f) => s + Number(f[3]), 0);
    const restoreMs = restored.reduce((s, f) => Math.max(s, Number(f[4])), 0);
    const ok = resumed && verifier.overshoot.size === 0;
    return {
      label,
      keys,
      ok,
      resumeMs: resumed ? resumeMs : NaN,
      restoredRecords,
      restoreMs,
      load: load(),
      note: `${ok ? 'counts correct after the restart' : `not resumed or wrong: ${verifier.wrong(3).join('; ')}`}; store filled in ${fillS.toFixed(1)} s; session timeout ${RECOVERY_SESSION_MS} ms (the dead member leaves the group after it)`,
    };
  } finally {
    await child.stop();
    saveLog(`recovery-${system}-${keys}`, child);
    await verifier.stop();
    rmSync(cfg.stateDir, { recursive: true, force: true });
  }
}

await finish();

// ---- done ------------------------------------------------------------------------------------
async function finish(): Promise<never> {
  // Interrupted: the signal handler stops the broker and exits.
  if (interrupted) await new Promise<never>(() => undefined);
  await producer.disconnect();
  await admin.disconnect();
  log('stopping the broker');
  await broker.stop();
  rmSync(work, { recursive: true, force: true });
  if (!opt['no-record']) {
    const merged = saveMerged(resultsPath, mine, legacyDate);
    recordReport(merged, reportTarget);
    log(`results merged into ${resultsPath}; report in ${reportTarget.markdown}`);
  } else log('--no-record: nothing written');
  log(`done in ${((Date.now() - startedAt.getTime()) / 60_000).toFixed(1)} min, load avg ${load().join(' / ')}`);
  process.exit(0);
}

/** --soak-vocab: `N` or `N:point-only`, comma-separated. */
function soakVariants(): { vocab: number; pointOnly: boolean }[] {
  return opt['soak-vocab'].split(',').map((t) => {
    const [n, mode, ...rest] = t.trim().split(':');
    const vocab = num(n);
    if (!Number.isInteger(vocab) || vocab <= 0 || rest.length > 0 || (mode !== undefined && mode !== 'point-only')) fail(`--soak-vocab: "${t}" is neither N nor N:point-only (e.g. 10000,1000000,1000000:point-only)`);
    return { vocab, pointOnly: mode === 'point-only' };
  });
}

function fail(message: string): never {
  console.error(`bench:compare: ${message}`);
  process.exit(2);
}

/** The app's own output, for evidence: <tmpdir>/vltava-compare-logs/<run>.log (the last 5,000 lines). */
function saveLog(id: string, child: Child): void {
  const dir = join(tmpdir(), 'vltava-compare-logs');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${id}.log`), `${child.lines.join('\n')}\n`);
}

function javaVersion(): string {
  return spawnSyncText('java', ['-version']).split('\n')[0]?.trim() ?? '?';
}

function spawnSyncText(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

function pkgVersion(name: string): string {
  try {
    const p = fileURLToPath(new URL(`../../node_modules/${name}/package.json`, import.meta.url));
    return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}
