/**
 * pnpm bench:driver — word count through the TopologyTestDriver, in-memory stores.
 *
 * The topology is the one of examples/word-count (rebuilt here so the bench package needs no
 * extra dependency): lines -> flatMapValues(split) -> groupBy(word) -> repartition -> count -> output.
 * Every word is serialized to the repartition topic, partitioned with murmur2, deserialized,
 * counted in the change-logged store stack (typed facade -> cache -> change-logging -> overlay ->
 * memory bytes store) and written, serialized, to the output topic, which the bench reads back.
 */
import { Serdes, StreamsBuilder, type Topology } from '@vltava/dsl';
import { TopologyTestDriver } from '@vltava/test-driver';
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { fmt, recordSection, type BenchRow } from './report.js';

function wordCountTopology(rangeScans: boolean): Topology {
  const builder = new StreamsBuilder();
  builder
    .stream('text-lines', { keySerde: Serdes.string(), valueSerde: Serdes.string() })
    .flatMapValues((line) => line.toLowerCase().split(' '), { name: 'split-words' })
    .groupBy((_key, word) => word, { keySerde: Serdes.string(), valueSerde: Serdes.string(), name: 'by-word' })
    .count({ name: 'counts', rangeScans })
    .toStream({ name: 'count-updates' })
    .to('word-counts', { keySerde: Serdes.string(), valueSerde: Serdes.int64(), name: 'to-word-counts' });
  return builder.build();
}

/** Deterministic corpus: `nLines` lines of `wordsPerLine` words from a Zipf-like vocabulary of `vocab` words. */
function corpus(nLines: number, wordsPerLine: number, vocab: number): string[] {
  let seed = 42;
  const rand = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const vocabulary = Array.from({ length: vocab }, (_, i) => `w${i.toString(36)}`);
  const lines: string[] = [];
  for (let l = 0; l < nLines; l++) {
    const ws: string[] = [];
    for (let w = 0; w < wordsPerLine; w++) ws.push(vocabulary[Math.floor(vocab * rand() ** 3)]!);
    lines.push(ws.join(' '));
  }
  return lines;
}

interface Result {
  readonly words: number;
  readonly seconds: number;
  readonly outputs: number;
  /** The last count read back for each word. */
  readonly counts: Map<string, number>;
}

/** The expected final counts, computed without the library. */
function referenceCounts(lines: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of lines) for (const w of line.toLowerCase().split(' ')) counts.set(w, (counts.get(w) ?? 0) + 1);
  return counts;
}

function checkCounts(got: ReadonlyMap<string, number>, want: ReadonlyMap<string, number>): void {
  if (got.size !== want.size) throw new Error(`expected counts for ${want.size} words, read back ${got.size}`);
  for (const [w, n] of want) if (got.get(w) !== n) throw new Error(`word "${w}": expected count ${n}, read back ${String(got.get(w))}`);
}

function run(lines: readonly string[], wordsPerLine: number, partitions: number, batch: number, rangeScans = true, cacheMaxBytes = 0): Result {
  const driver = new TopologyTestDriver(wordCountTopology(rangeScans), { applicationId: 'bench', defaultPartitions: partitions, cacheMaxBytes });
  const input = driver.createInputTopic('text-lines', { keySerde: Serdes.string(), valueSerde: Serdes.string() });
  const output = driver.createOutputTopic('word-counts', { keySerde: Serdes.string(), valueSerde: Serdes.int64() });
  // The changelog (timestamped values: 8-byte timestamp + count) is drained as raw bytes.
  const changelog = driver.createOutputTopic('bench-counts-changelog', { keySerde: Serdes.bytes(), valueSerde: Serdes.bytes() });
  const counts = new Map<string, number>();
  let outputs = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < lines.length; i += batch) {
    input.pipeValueList(lines.slice(i, i + batch));
    const kvs = output.readKeyValuesToList();
    outputs += kvs.length;
    for (const kv of kvs) counts.set(kv.key!, kv.value!);
    changelog.readKeyValuesToList();
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  driver.close();
  return { words: lines.length * wordsPerLine, seconds, outputs, counts };
}

const WORDS_PER_LINE = 10;
const VOCAB = 10_000;
const BATCH = 1_000;
const RUNS = 3;

const configs: readonly { partitions: number; rangeScans: boolean; cache: number; label: string }[] = [
  { partitions: 1, rangeScans: true, cache: 0, label: '1 partition' },
  { partitions: 4, rangeScans: true, cache: 0, label: '4 partitions' },
  { partitions: 1, rangeScans: false, cache: 0, label: '1 partition, point-only store (rangeScans: false)' },
  { partitions: 1, rangeScans: true, cache: 10 * 1024 * 1024, label: '1 partition, 10 MiB record cache' },
];

const child = process.argv.indexOf('--config');
if (child >= 0) {
  // One configuration in a fresh process (its own JIT and heap): warm up, then the median of RUNS runs.
  const c = configs[Number(process.argv[child + 1])]!;
  const lines = corpus(Number(process.env['BENCH_LINES'] ?? 100_000), WORDS_PER_LINE, VOCAB);
  run(lines, WORDS_PER_LINE, c.partitions, BATCH, c.rangeScans, c.cache);
  const want = referenceCounts(lines);
  const results: Result[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = run(lines, WORDS_PER_LINE, c.partitions, BATCH, c.rangeScans, c.cache);
    checkCounts(r.counts, want);
    results.push(r);
  }
  results.sort((a, b) => a.seconds - b.seconds);
  const r = results[Math.floor(RUNS / 2)]!;
  if (c.cache === 0 && r.outputs !== r.words) throw new Error(`expected one count update per word, got ${r.outputs} for ${r.words} words`);
  process.stdout.write(JSON.stringify({ words: r.words, seconds: r.seconds, outputs: r.outputs }));
  process.exit(0);
}

const loadBefore = loadavg();
const rows: BenchRow[] = [];
for (const [i, c] of configs.entries()) {
  const out = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--config', String(i)], { encoding: 'utf8', env: process.env });
  if (out.status !== 0) throw new Error(`bench config "${c.label}" failed: ${out.stderr}`);
  const r = JSON.parse(out.stdout) as Omit<Result, 'counts'>;
  rows.push({
    metric: `word count, ${c.label}`,
    value: `${fmt(r.words / r.seconds)} words/s`,
    note: `median of ${RUNS} runs of ${fmt(r.words)} words (${r.seconds.toFixed(2)} s), ${fmt(r.outputs)} count updates out, final counts = reference`,
  });
}
const loadAfter = loadavg();
const load = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');
recordSection(
  'driver',
  'Word count through the TopologyTestDriver (in-memory stores)',
  'pnpm bench:driver',
  rows,
  `Each word is serialized to the repartition topic, routed by murmur2, deserialized, counted in the change-logged, ` +
    `cached, transactional in-memory store stack, and written to (and read back from) the output topic. ` +
    `Vocabulary ${fmt(VOCAB)} words (Zipf-like), ${WORDS_PER_LINE} words per line; the driver commits after each pipeValueList of ${fmt(BATCH)} lines. ` +
    `Without a cache every count update is emitted and change-logged; with the cache, one update per word per commit (Kafka Streams caching).\n\n` +
    `Every run reads back all outputs and checks the last count of every word against a count computed without the library. ` +
    `Load average (1/5/15 min) before the runs ${load(loadBefore)}, after ${load(loadAfter)}: the figures move with the other work on this shared 2-core box.\n\n` +
    `What limits it (\`node --cpu-prof\` of the 1-partition row, self time by file; the shares move with the load on this box): ` +
    `the store stack 27-30% (overlay, committed map, typed facade, change-logging: mostly Map lookups on 10,000-entry maps and reading the old count's bytes, memory-bound), ` +
    `garbage collection 14-23%, serialization and Buffer creation 13-18% (21% before this round), the executor's per-hop dispatch about 10%, ` +
    `the driver's topic bookkeeping and output capture about 8%, the bench's own splitting, reading and checking about 11%. ` +
    `The word count allocates about 1.65 KB per word (2.5 KB before): six Buffers (repartition key and value, changelog key and value, output key and value) ` +
    `and about ten small objects the API requires (a record per hop, the collected records, the count with its timestamp, the change). ` +
    `No single layer is left to remove: the 1M words/s goal is not met on this box; it would take fewer Buffers and records per word ` +
    `than serializing through the repartition, changelog and output topics needs.`);
