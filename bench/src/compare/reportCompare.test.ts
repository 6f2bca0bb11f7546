import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { recordReport } from './reportCompare.js';
import { emptyResults, ratiosOf, resultKey, type RunResult } from './results.js';

const DS = '1000000x10 vocab 10000 seed 42, 4 partitions';

function run(group: RunResult['group'], wordsPerSec: number, p99Ms: number): RunResult {
  return { label: `${group} run`, group, guarantee: 'exactly-once', commitMs: 100, ok: true, lines: 1000, words: 10_000, seconds: 1, linesPerSec: wordsPerSec / 10, wordsPerSec, steadyWordsPerSec: wordsPerSec, p50Ms: 100, p99Ms, p999Ms: p99Ms + 1, peakRssMb: 100, load: [1.5, 2, 3], note: '' };
}

test('the report shows each ratio with its date, commit, load and command, every target, and keeps other sections', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
  const md = join(dir, 'benchmarks.md');
  writeFileSync(md, '# Benchmarks\n\n<!-- bench:other:start -->\nkept\n<!-- bench:other:end -->\n');
  const f = emptyResults();
  f.invocations.i1 = { id: 'i1', date: '2026-12-01T10:00:00.000Z', commit: 'abc1234', command: 'pnpm bench:compare --only kstreams-eos,vltava-eos-100', machine: '2 cores', versions: {} };
  f.results[resultKey(DS, 'vltava-eos-100')] = { runId: 'vltava-eos-100', dataset: DS, kind: 'wordcount', invocation: 'i1', at: '2026-12-01T10:05:00.000Z', result: run('vltava', 90_000, 240) };
  f.results[resultKey(DS, 'kstreams-eos')] = { runId: 'kstreams-eos', dataset: DS, kind: 'wordcount', invocation: 'i1', at: '2026-12-01T10:03:00.000Z', result: run('kstreams', 30_000, 300) };
  for (const r of ratiosOf(f, 'i1')) f.ratios[resultKey(r.dataset, r.ratioId)] = r;
  recordReport(f, { markdown: md, svg: join(dir, 'c.svg'), dataset: DS });
  const doc = readFileSync(md, 'utf8');
  t.true(doc.includes('<!-- bench:other:start -->\nkept\n<!-- bench:other:end -->'));
  const row = doc.split('\n').find((l) => l.startsWith('| Vltava EOS / Kafka Streams EOS, words/s, 1 thread each'))!;
  t.regex(row, /\| 3\.00× \| ≥ 1\.5× \| yes \|/);
  t.regex(row, /2026-12-01 10:05 \[A\] \| abc1234 \| 1\.50 \/ 2\.00 \/ 3\.00 \|/);
  t.true(doc.includes('**[A]** 2026-12-01 10:00 UTC, git abc1234: `pnpm bench:compare --only kstreams-eos,vltava-eos-100`'));
  t.regex(doc, /\| Vltava EOS \/ Kafka Streams EOS, words\/s, 2 threads each, 100 ms \| not measured \| ≥ 1\.5× \|/);
  t.regex(doc, /p99 latency within \(1 hop \+ 1\) × 100 ms \+ 50 ms \| 240 ms \| ≤ 250 ms \| yes/);
  // Rewriting replaces the section instead of appending a second one.
  recordReport(f, { markdown: md, svg: join(dir, 'c.svg'), dataset: DS });
  t.is(readFileSync(md, 'utf8').split('<!-- bench:compare:start -->').length, 2);
});
