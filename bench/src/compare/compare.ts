/**
 * pnpm bench:compare — word count side by side on one local broker and one input:
 * (a) the broker's ceiling (ProducerPerformance plain and transactional, ConsumerPerformance read_committed),
 * (b) Kafka Streams (Java, same version as the broker) under exactly_once_v2 and at_least_once,
 * (c) @kafkats/flow under exactly_once, (d) Vltava under EOS and at-least-once at 100 ms and 1 s commits,
 * then crash recovery (a store with N keys, kill -9, time to resume) for Vltava and Kafka Streams.
 *
 * Options (all optional):
 *   --lines N            input lines (default 1,000,000; 10 words each)    --seed N (42)   --vocab N (10,000)
 *   --partitions N       input/output/repartition partitions (default 4)
 *   --only a,b           run ids or prefixes: ceiling, kstreams, flow, vltava, recovery (default: all)
 *   --recovery-keys N,M  store sizes for the crash-recovery runs (default 1,000,000)
 *   --latency-rate N     lines/s in the latency phase (default 200)   --latency-seconds N (default 5)
 *   --timeout-sec N      give up on a run after N s (default 900); --flow-timeout-sec N (default 240): @kafkats/flow
 *                        is far slower, so its rate is estimated from the count updates it wrote by then
 *   --profile            also run Vltava EOS 100 ms under node --cpu-prof and print the top costs
 *   --no-record          do not write docs/benchmarks.md
 *   --kafkajs-fix        also run the Vltava configurations with kafkajs' O(n²) producer grouping replaced by an
 *                        O(n) one (a --require preload in the bench process only; see the profile section)
 *   --report-only        only rewrite docs/benchmarks.md and the chart from bench/results/compare.json
 *
 * Results accumulate in bench/results/compare.json (per dataset), so the runs can be spread over several
 * invocations (`--only`); docs/benchmarks.md and docs/benchmarks-compare.svg are regenerated from it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createTopicsAndWait, DEFAULT_KAFKA_VERSION, ensureJars, startLocalKafka } from '@vltava/kafka-local';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { AppConfig } from './appConfig.js';
import { barChartSvg, type Bar } from './chart.js';
import { CountsVerifier, liveChildren, datasetLines, inputProducer, kafkaClient, percentile, rng, sleep, startChild, writeLines, type Child, type DatasetSpec } from './harness.js';
import { consumerPerf, ensureStreamsJars, producerPerf, type StreamsJars } from './jvm.js';
import { analyzeProfile } from './profile.js';
import { recordReport, type CeilingResult, type RecoveryResult, type Results, type RunResult } from './reportCompare.js';

const { values: opt } = parseArgs({
  options: {
    lines: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '42' },
    vocab: { type: 'string', default: '10000' },
    'words-per-line': { type: 'string', default: '10' },
    partitions: { type: 'string', default: '4' },
    only: { type: 'string', default: '' },
    'recovery-keys': { type: 'string', default: '1000000' },
    'latency-rate': { type: 'string', default: '200' },
    'latency-seconds': { type: 'string', default: '5' },
    'timeout-sec': { type: 'string', default: '900' },
    'flow-timeout-sec': { type: 'string', default: '240' },
    profile: { type: 'boolean', default: false },
    'no-record': { type: 'boolean', default: false },
    'report-only': { type: 'boolean', default: false },
    'kafkajs-fix': { type: 'boolean', default: false },
  },
});

const num = (s: string | undefined): number => Number(String(s).replace(/[_,]/g, ''));
const spec: DatasetSpec = { lines: num(opt.lines), wordsPerLine: num(opt['words-per-line']), vocab: num(opt.vocab), seed: num(opt.seed) };
const PARTITIONS = num(opt.partitions);
const TIMEOUT_MS = num(opt['timeout-sec']) * 1000;
const LAT_RATE = num(opt['latency-rate']);
const LAT_SECONDS = num(opt['latency-seconds']);
const SESSION_MS = 10_000;
/** The broker's minimum: after kill -9 the dead member leaves the group only after it. */
const RECOVERY_SESSION_MS = 6_000;
const only = opt.only ? opt.only.split(',').map((s) => s.trim()).filter((s) => s.length > 0) : [];
/** `--only` names ids or id prefixes; an id is selected when it equals or starts with one of them. */
const selected = (id: string): boolean => only.length === 0 || only.some((o) => id === o || id.startsWith(o));
const version = process.env.KAFKA_VERSION ?? DEFAULT_KAFKA_VERSION;
const log = (m: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);
const load = (): [number, number, number] => loadavg().map((x) => Math.round(x * 100) / 100) as [number, number, number];

const specKey = `${spec.lines}x${spec.wordsPerLine} vocab ${spec.vocab} seed ${spec.seed}, ${PARTITIONS} partitions`;
// One results file per dataset: a run over another dataset (e.g. --lines 100000) merges into its own
// file and never erases the figures of the others. docs/benchmarks.md is written from the file of
// the dataset just run; --report-only rewrites it from the default dataset's file.
const specFile = (key: string): string => `compare-${key.replace(/[^A-Za-z0-9]+/g, '-').replace(/-+$/, '')}.json`;
const legacyPath = fileURLToPath(new URL('../../results/compare.json', import.meta.url));
const resultsPath = fileURLToPath(new URL(`../../results/${specFile(specKey)}`, import.meta.url));
if (opt['report-only']) {
  const path = existsSync(resultsPath) ? resultsPath : legacyPath;
  recordReport(JSON.parse(readFileSync(path, 'utf8')) as Results);
  process.exit(0);
}
const empty = (): Results => ({ spec: specKey, machine: '', versions: {}, runs: {}, ceilings: {}, recovery: {} });
const previous = existsSync(resultsPath) ? resultsPath : existsSync(legacyPath) ? legacyPath : undefined;
let results: Results = previous === undefined ? empty() : (JSON.parse(readFileSync(previous, 'utf8')) as Results);
if (results.spec !== specKey) results = empty();
const save = (): void => {
  mkdirSync(fileURLToPath(new URL('../../results/', import.meta.url)), { recursive: true });
  writeFileSync(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
};

const work = mkdtempSync(join(tmpdir(), 'vltava-compare-'));
const appDist = (name: string): string => fileURLToPath(new URL(`./${name}.js`, import.meta.url));

// ---------------------------------------------------------------------------------------------

const kafkaLib = ensureJars(version, undefined, log);
let streamsJars: StreamsJars | undefined;
// The Kafka Streams jars are needed as soon as any selected run is a Kafka Streams one
// (`--only kstreams-eos` used to select no jars and silently skip that run).
const wantsStreams = only.length === 0 || only.some((o) => o.startsWith('kstreams') || 'kstreams'.startsWith(o) || o.startsWith('recovery-kstreams') || 'recovery-kstreams'.startsWith(o));
if (wantsStreams) streamsJars = ensureStreamsJars(version, log);

log(`starting a broker (Kafka ${version}) on a free port, home ${work}`);
const broker = await startLocalKafka({ version, port: 0, home: join(work, 'kafka'), heapMb: 1024 });
const brokers = broker.brokers;
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    log(`${sig}: stopping the apps and the broker`);
    for (const c of liveChildren) c.kill('SIGKILL');
    void broker.stop(5_000).finally(() => process.exit(130));
  });
log(`broker at ${brokers} (pid ${broker.pid})`);
const kafka: Kafka = kafkaClient(brokers);
const admin: Admin = kafka.admin();
await admin.connect();
const producer: Producer = await inputProducer(kafka);

results.args = [...new Set([...(results.args ?? '').split(' | ').filter(Boolean), process.argv.slice(2).join(' ')])].join(' | ');
results.machine = `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB`;
results.versions = {
  node: process.version,
  kafka: version,
  'kafka-streams': version,
  java: javaVersion(),
  '@kafkats/flow': pkgVersion('@kafkats/flow'),
  kafkajs: pkgVersion('kafkajs'),
  vltava: `git ${spawnSyncText('git', ['rev-parse', '--short', 'HEAD']).trim()}`,
};

// ---- input: written once -------------------------------------------------------------------
const INPUT = 'compare-input';
await createTopicsAndWait(admin, [{ topic: INPUT, numPartitions: PARTITIONS, replicationFactor: 1 }]);
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
{
  const t0 = performance.now();
  await writeLines(producer, INPUT, PARTITIONS, counted(datasetLines(spec)));
  const s = (performance.now() - t0) / 1000;
  log(`input: ${inputLines} lines, ${inputWords} words, ${ref.size} distinct, ${(inputBytes / 2 ** 20).toFixed(1)} MiB written in ${s.toFixed(1)} s (idempotent kafkajs producer)`);
}
const recordSize = Math.round(inputBytes / inputLines);

// ---- (a) the broker's ceiling ----------------------------------------------------------------
const ceilingRecords = Math.max(1_000_000, spec.lines);
async function ceiling(id: string, label: string, fn: () => CeilingResult): Promise<void> {
  if (!selected(id)) return;
  log(`${label} ...`);
  try {
    const r = fn();
    results.ceilings[id] = r;
    log(`${label}: ${Math.round(r.recordsPerSec)} records/s ${r.note}`);
  } catch (e) {
    log(`${label} failed: ${(e as Error).message}`);
  }
  save();
}
for (const [id, txn] of [['ceiling-produce', undefined], ['ceiling-produce-txn', 100]] as const) {
  const topic = `perf-${id}`;
  if (selected(id)) await createTopicsAndWait(admin, [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }]);
  await ceiling(id, txn ? `ProducerPerformance, transactional (--transaction-duration-ms ${txn})` : 'ProducerPerformance, plain', () => {
    const p = producerPerf(kafkaLib, brokers, topic, ceilingRecords, recordSize, txn);
    return { label: txn ? `broker ceiling: produce, transactional (${txn} ms transactions)` : 'broker ceiling: produce, plain', recordsPerSec: p.recordsPerSec, load: load(), note: `${ceilingRecords} records of ${recordSize} B, acks=all; ${p.mbPerSec} MB/s; latency p50 ${p.p50Ms} ms, p99 ${p.p99Ms} ms` };
  });
}
await ceiling('ceiling-consume', 'ConsumerPerformance, read_committed', () => {
  // Reads what the transactional ProducerPerformance wrote (or the input topic if it did not run).
  const txnTopic = results.ceilings['ceiling-produce-txn'] && selected('ceiling-produce-txn') ? 'perf-ceiling-produce-txn' : INPUT;
  const n = txnTopic === INPUT ? inputLines : ceilingRecords;
  const c = consumerPerf(kafkaLib, brokers, txnTopic, n, work);
  return { label: 'broker ceiling: consume, read_committed', recordsPerSec: c.recordsPerSec, load: load(), note: `${n} transactional records of ${txnTopic}; ${c.mbPerSec} MB/s; ${Math.round(c.fetchRecordsPerSec)} records/s excluding the group join` };
});

// ---- (b), (c), (d): word count ---------------------------------------------------------------
let runNo = 0;

interface System {
  readonly id: string;
  readonly label: string;
  readonly group: RunResult['group'];
  readonly guarantee: AppConfig['guarantee'];
  readonly commitMs: number;
  launch(cfg: AppConfig, profileDir?: string): Child;
}

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

function javaStreams(id: string, label: string, guarantee: AppConfig['guarantee'], commitMs: number): System {
  return {
    id,
    label,
    group: 'kstreams',
    guarantee,
    commitMs,
    launch: (cfg) =>
      startChild(
        'java',
        ['-Xmx1g', '-Dorg.slf4j.simpleLogger.defaultLogLevel=error', '-cp', `${streamsJars!.lib}/*:${streamsJars!.classes}`, 'WordCount', cfg.brokers, cfg.applicationId, cfg.inputTopic, cfg.outputTopic, guarantee === 'exactly-once' ? 'exactly_once_v2' : 'at_least_once', String(commitMs), cfg.stateDir, String(cfg.sessionTimeoutMs)],
        { log: childLog(id) },
      ),
  };
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

function nodeApp(id: string, label: string, group: 'flow' | 'vltava', guarantee: AppConfig['guarantee'], commitMs: number, kafkajsFix = false): System {
  return {
    id,
    label,
    group,
    guarantee,
    commitMs,
    launch: (cfg, profileDir) =>
      startChild(
        process.execPath,
        [...(kafkajsFix ? ['--require', kafkajsFixPreload()] : []), ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), appDist(group === 'flow' ? 'flowApp' : 'vltavaApp'), JSON.stringify(cfg)],
        { log: childLog(id) },
      ),
  };
}

const systems: System[] = [
  javaStreams('kstreams-eos', 'Kafka Streams, exactly_once_v2, 100 ms', 'exactly-once', 100),
  javaStreams('kstreams-alos', 'Kafka Streams, at_least_once, 100 ms', 'at-least-once', 100),
  nodeApp('flow-eos', '@kafkats/flow, exactly_once, 100 ms', 'flow', 'exactly-once', 100),
  nodeApp('vltava-eos-100', 'Vltava, exactly-once, 100 ms', 'vltava', 'exactly-once', 100),
  nodeApp('vltava-eos-1000', 'Vltava, exactly-once, 1 s', 'vltava', 'exactly-once', 1000),
  nodeApp('vltava-alos-100', 'Vltava, at-least-once, 100 ms', 'vltava', 'at-least-once', 100),
  nodeApp('vltava-alos-1000', 'Vltava, at-least-once, 1 s', 'vltava', 'at-least-once', 1000),
  ...(opt['kafkajs-fix']
    ? [
        nodeApp('vltava-fix-eos-100', 'Vltava + O(n) kafkajs grouping, exactly-once, 100 ms', 'vltava', 'exactly-once', 100, true),
        nodeApp('vltava-fix-eos-1000', 'Vltava + O(n) kafkajs grouping, exactly-once, 1 s', 'vltava', 'exactly-once', 1000, true),
        nodeApp('vltava-fix-alos-100', 'Vltava + O(n) kafkajs grouping, at-least-once, 100 ms', 'vltava', 'at-least-once', 100, true),
        nodeApp('vltava-fix-alos-1000', 'Vltava + O(n) kafkajs grouping, at-least-once, 1 s', 'vltava', 'at-least-once', 1000, true),
      ]
    : []),
];

async function newTopics(...topics: string[]): Promise<void> {
  await createTopicsAndWait(admin, topics.map((topic) => ({ topic, numPartitions: PARTITIONS, replicationFactor: 1 })));
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

async function wordCount(sys: System, profileDir?: string): Promise<RunResult> {
  runNo++;
  const appId = `${sys.id}-${runNo}-${Date.now().toString(36)}`;
  const cfg: AppConfig = {
    brokers,
    applicationId: appId,
    inputTopic: INPUT,
    outputTopic: `${appId}-out`,
    guarantee: sys.guarantee,
    commitIntervalMs: sys.commitMs,
    stateDir: mkdtempSync(join(work, 'state-')),
    sessionTimeoutMs: SESSION_MS,
    ...(sys.group === 'flow' ? { repartitionTopic: `${appId}-words` } : {}),
  };
  await newTopics(cfg.outputTopic, ...(cfg.repartitionTopic ? [cfg.repartitionTopic] : []));
  const lines0 = inputLines;
  const words0 = inputWords;
  const verifier = new CountsVerifier(new Map(ref));
  await verifier.start(kafka, cfg.outputTopic);
  log(`${sys.label}: ${lines0} lines / ${words0} words in the input ...`);
  const t0 = performance.now();
  const child = sys.launch(cfg, profileDir);
  const base = { label: sys.label, group: sys.group, guarantee: sys.guarantee, commitMs: sys.commitMs, lines: lines0, words: words0 };
  const progress = setInterval(() => log(`  ${sys.id}: ${verifier.outputs} outputs read, ${verifier.remaining} words not yet at their final count, RSS ${(child.peakRss() / 2 ** 20).toFixed(0)} MiB`), 15_000);
  try {
    const timeoutMs = sys.group === 'flow' ? Math.min(TIMEOUT_MS, num(opt['flow-timeout-sec']) * 1000) : TIMEOUT_MS;
    const done = await Promise.race([verifier.until(timeoutMs), child.exited.then(() => false)]);
    const seconds = ((done ? verifier.lastOutputAt : performance.now()) - t0) / 1000;
    if (!done) {
      const why = child.proc.exitCode !== null ? `process exited (${child.proc.exitCode}): ${child.lines.slice(-5).join(' | ')}` : `stopped after ${timeoutMs / 1000} s`;
      // Not finished: estimate the rate from the count updates read (one per input word when the app has no cache).
      const wps = verifier.outputs / seconds;
      let stage1 = '';
      if (cfg.repartitionTopic) {
        const ends = await admin.fetchTopicOffsets(cfg.repartitionTopic).catch(() => []);
        stage1 = `; ${ends.reduce((n, p) => n + Number(p.high), 0)} offsets in its repartition topic (words through the first stage, incl. transaction markers)`;
      }
      return { ...base, ok: false, seconds, linesPerSec: wps / spec.wordsPerLine, wordsPerSec: wps, steadyWordsPerSec: NaN, p50Ms: NaN, p99Ms: NaN, peakRssMb: child.peakRss() / 2 ** 20, load: load(), note: [`did not finish: ${why}; ${verifier.outputs} count updates read, rate estimated from them${stage1}; ${verifier.remaining} words not at their final count yet (e.g. ${verifier.wrong(2).join('; ')})${verifier.overshoot.size ? `; ${verifier.overshoot.size} words counted too often` : ''}`, ...errorSummary(child)].join('; ') };
    }
    const firstOutS = ((verifier.firstOutputAt ?? t0) - t0) / 1000;
    log(`  ${sys.id}: input counted in ${seconds.toFixed(1)} s (${Math.round(words0 / seconds)} words/s, first output after ${firstOutS.toFixed(1)} s); latency phase ...`);
    await latencyPhase(verifier, String(runNo));
    const done2 = await verifier.until(60_000);
    const stable = done2 && (await verifier.stable(2_000));
    const lat = [...verifier.latencies].sort((a, b) => a - b);
    const peak = child.peakRss() / 2 ** 20;
    const problems = [
      ...(stable ? [] : [`counts differ from the reference: ${verifier.wrong(3).join('; ')}`]),
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
      peakRssMb: peak,
      load: load(),
      note: [`first output after ${firstOutS.toFixed(1)} s`, `latency over ${lat.length} marker lines at ${LAT_RATE} lines/s`, ...problems, ...errorSummary(child)].join('; '),
    };
  } finally {
    clearInterval(progress);
    await child.stop();
    saveLog(sys.id, child);
    await verifier.stop();
    rmSync(cfg.stateDir, { recursive: true, force: true });
  }
}

for (const sys of systems) {
  if (!selected(sys.id)) continue;
  if (sys.group === 'kstreams' && !streamsJars) throw new Error(`${sys.id} is selected but the Kafka Streams jars were not loaded`);
  const r = await wordCount(sys);
  results.runs[sys.id] = r;
  save();
  log(`${sys.label}: ${r.ok ? 'correct' : 'FAILED'}, ${Math.round(r.wordsPerSec)} words/s (${Math.round(r.steadyWordsPerSec)} after the first output) (${Math.round(r.linesPerSec)} lines/s), p50 ${r.p50Ms.toFixed(0)} ms, p99 ${r.p99Ms.toFixed(0)} ms, peak RSS ${r.peakRssMb.toFixed(0)} MiB, load ${r.load.join(' ')}; ${r.note}`);
}

// ---- profile -----------------------------------------------------------------------------------
if (opt.profile) {
  const dir = mkdtempSync(join(work, 'prof-'));
  const sys = systems.find((s) => s.id === (opt['kafkajs-fix'] ? 'vltava-fix-eos-100' : 'vltava-eos-100'))!;
  const r = await wordCount({ ...sys, id: `${sys.id}-profiled` }, dir);
  log(`profiled run: ${Math.round(r.wordsPerSec)} words/s (profiling overhead included)`);
  results[opt['kafkajs-fix'] ? 'profileFixed' : 'profile'] = { ...analyzeProfile(dir), wordsPerSec: r.wordsPerSec, load: load() };
  save();
  for (const row of (opt['kafkajs-fix'] ? results.profileFixed : results.profile)?.top ?? []) log(`  ${row.selfPct.toFixed(1)}%  ${row.name}  ${row.where}`);
}

// ---- crash recovery --------------------------------------------------------------------------
const recoveryKeys = opt['recovery-keys'] ? opt['recovery-keys'].split(',').map(num).filter((n) => n > 0) : [];
for (const keys of recoveryKeys) {
  const targets = (['vltava', 'kstreams'] as const).filter((s) => selected(`recovery-${s}`) && (s === 'vltava' || streamsJars));
  if (targets.length === 0) continue;
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
  for (const s of targets) {
    const id = `recovery-${s}${s === 'vltava' && opt['kafkajs-fix'] ? '-fix' : ''}-${keys}`;
    results.recovery[id] = await recovery(s, keys, topic, recRef);
    save();
    const r = results.recovery[id];
    log(`${r.label}: ${r.ok ? '' : 'FAILED '}resume ${r.resumeMs.toFixed(0)} ms (restored ${r.restoredRecords} records in ${r.restoreMs} ms); ${r.note}`);
  }
}

async function recovery(system: 'vltava' | 'kstreams', keys: number, topic: string, recRef: Map<string, number>): Promise<RecoveryResult> {
  runNo++;
  const appId = `recovery-${system}-${runNo}-${Date.now().toString(36)}`;
  const cfg: AppConfig = { brokers, applicationId: appId, inputTopic: topic, outputTopic: `${appId}-out`, guarantee: 'exactly-once', commitIntervalMs: 100, stateDir: mkdtempSync(join(work, 'state-')), sessionTimeoutMs: RECOVERY_SESSION_MS };
  await newTopics(cfg.outputTopic);
  const fix = system === 'vltava' && opt['kafkajs-fix'];
  const sys = system === 'vltava' ? nodeApp('recovery-vltava', 'Vltava', 'vltava', 'exactly-once', 100, fix) : javaStreams('recovery-kstreams', 'Kafka Streams', 'exactly-once', 100);
  const label = `${system === 'vltava' ? (fix ? 'Vltava + O(n) kafkajs grouping' : 'Vltava') : 'Kafka Streams'}, EOS, resume after kill -9 with ${keys.toLocaleString('en-US')} keys`;
  const verifier = new CountsVerifier(new Map(recRef));
  await verifier.start(kafka, cfg.outputTopic);
  const t0 = performance.now();
  let child = sys.launch(cfg);
  try {
    const filled = await Promise.race([verifier.until(TIMEOUT_MS), child.exited.then(() => false)]);
    const fillS = (performance.now() - t0) / 1000;
    if (!filled) return { label, keys, ok: false, resumeMs: NaN, restoredRecords: 0, restoreMs: 0, load: load(), note: [`store never filled: ${verifier.remaining} keys wrong after ${fillS.toFixed(0)} s, e.g. ${verifier.wrong(4).join('; ')}`, ...errorSummary(child)].join('; ') };
    log(`  ${system}: ${keys} keys counted in ${fillS.toFixed(1)} s; kill -9 in 3 s`);
    await sleep(3_000);
    child.kill9();
    await child.exited;
    // Restart, and send one probe line per input partition: resumed = every probe counted and committed.
    const t1 = performance.now();
    child = sys.launch(cfg);
    const probes: { value: string; partition: number }[] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      const w = `zr${runNo}x${p}`;
      verifier.expect(w, 1);
      recRef.set(w, 1); // the next system reads the same topic
      verifier.markerSentAt(w, t1);
      probes.push({ value: w, partition: p });
    }
    await producer.send({ topic, acks: -1, messages: probes });
    const resumed = await Promise.race([verifier.until(TIMEOUT_MS), child.exited.then(() => false)]);
    const resumeMs = verifier.lastOutputAt - t1;
    await sleep(500);
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

// ---- done ------------------------------------------------------------------------------------
await producer.disconnect();
await admin.disconnect();
log('stopping the broker');
await broker.stop();
rmSync(work, { recursive: true, force: true });
save();
if (!opt['no-record']) recordReport(results);
log(`results in ${resultsPath}`);
process.exit(0);

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
  return `${r.stdout}${r.stderr}`;
}

function pkgVersion(name: string): string {
  try {
    const p = fileURLToPath(new URL(`../../node_modules/${name}/package.json`, import.meta.url));
    return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}
