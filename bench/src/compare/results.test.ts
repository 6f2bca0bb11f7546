import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { emptyResults, latencyBoundMs, loadResults, meetsTarget, ratiosOf, resultKey, saveMerged, type Invocation, type ResultsFile, type RunResult } from './results.js';

const DS = '1000x10 vocab 100 seed 1, 4 partitions';

function inv(id: string): Invocation {
  return { id, date: `2026-12-01T10:00:0${id.length}Z`, commit: 'abc', command: `pnpm bench:compare --only ${id}`, machine: 'test', versions: {} };
}

function run(wordsPerSec: number, extra: Partial<RunResult> = {}): RunResult {
  return { label: 'x', group: 'vltava', guarantee: 'exactly-once', commitMs: 100, ok: true, lines: 1000, words: 10_000, seconds: 1, linesPerSec: wordsPerSec / 10, wordsPerSec, steadyWordsPerSec: wordsPerSec, p50Ms: 100, p99Ms: 200, peakRssMb: 100, load: [1, 1, 1], note: '', ...extra };
}

function invocationWith(id: string, runs: Record<string, RunResult>): ResultsFile {
  const f = emptyResults();
  f.invocations[id] = inv(id);
  for (const [runId, r] of Object.entries(runs)) f.results[resultKey(DS, runId)] = { runId, dataset: DS, kind: 'wordcount', invocation: id, at: '2026-12-01T10:00:00Z', result: r };
  for (const r of ratiosOf(f, id)) f.ratios[resultKey(r.dataset, r.ratioId)] = r;
  return f;
}

test('a partial run merges: the latest result of a run id wins, other runs and their ratio stay', (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'bench-results-')), 'compare.json');
  saveMerged(path, invocationWith('first', { 'vltava-eos-100': run(60_000), 'kstreams-eos': run(30_000, { group: 'kstreams' }) }));
  const merged = saveMerged(path, invocationWith('second', { 'vltava-eos-100': run(90_000) }));
  t.is(merged.results[resultKey(DS, 'kstreams-eos')]?.invocation, 'first');
  t.is(merged.results[resultKey(DS, 'vltava-eos-100')]?.invocation, 'second');
  // The ratio is the first invocation's pair: never the second run's figure over the first's.
  const ratio = merged.ratios[resultKey(DS, 'eos-words')]!;
  t.is(ratio.invocation, 'first');
  t.is(ratio.value, 2);
  t.deepEqual(Object.keys(merged.invocations).sort(), ['first', 'second']);
  t.deepEqual(loadResults(path), merged);
});

test('a later invocation with both runs replaces the ratio; an unreferenced invocation is dropped', (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'bench-results-')), 'compare.json');
  saveMerged(path, invocationWith('first', { 'vltava-eos-100': run(60_000), 'kstreams-eos': run(30_000, { group: 'kstreams' }) }));
  const merged = saveMerged(path, invocationWith('third', { 'vltava-eos-100': run(45_000), 'kstreams-eos': run(30_000, { group: 'kstreams' }) }));
  t.is(merged.ratios[resultKey(DS, 'eos-words')]?.value, 1.5);
  t.true(meetsTarget(merged.ratios[resultKey(DS, 'eos-words')]!));
  t.deepEqual(Object.keys(merged.invocations), ['third']);
});

test('ratio targets: lower is better for RSS and p99; an unfinished run meets nothing', (t) => {
  const f = invocationWith('x', { 'vltava-eos-100': run(10, { peakRssMb: 300, p99Ms: 150 }), 'kstreams-eos': run(20, { group: 'kstreams', peakRssMb: 200, p99Ms: 300, ok: false }) });
  const rss = f.ratios[resultKey(DS, 'eos-rss')]!;
  t.is(rss.value, 1.5);
  t.is(meetsTarget(rss), undefined); // kstreams-eos did not finish
  const g = invocationWith('y', { 'vltava-eos-100': run(10, { peakRssMb: 100, p99Ms: 150 }), 'kstreams-eos': run(20, { group: 'kstreams', peakRssMb: 200, p99Ms: 300 }) });
  t.true(meetsTarget(g.ratios[resultKey(DS, 'eos-rss')]!));
  t.true(meetsTarget(g.ratios[resultKey(DS, 'eos-p99')]!));
  t.false(meetsTarget(g.ratios[resultKey(DS, 'eos-words')]!));
  t.is(latencyBoundMs(100), 250);
});

test('the legacy file keeps its figures, dated by its last commit', (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'bench-results-')), 'compare.json');
  const legacy = { spec: DS, machine: 'm', versions: { vltava: 'git d7b8c33' }, args: '--only recovery-vltava', runs: {}, ceilings: {}, recovery: { 'recovery-vltava-100000': { label: 'r', keys: 100000, ok: true, resumeMs: 6561, restoredRecords: 0, restoreMs: 102, load: [1, 2, 3], note: '' } } };
  writeFileSync(path, JSON.stringify(legacy));
  const merged = saveMerged(path, invocationWith('new', { 'vltava-eos-100': run(1) }), () => '2026-11-22T07:19:04Z');
  const rec = merged.results[resultKey(DS, 'recovery-vltava-100000')]!;
  t.is(rec.kind, 'recovery');
  t.is(rec.at, '2026-11-22T07:19:04Z');
  t.is(merged.invocations[rec.invocation]?.commit, 'd7b8c33');
  t.is(merged.invocations[rec.invocation]?.command, 'pnpm bench:compare --only recovery-vltava');
  t.is((JSON.parse(readFileSync(path, 'utf8')) as { schema: number }).schema, 2);
});

test('the file keeps number arrays on one line and reads back the same', (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'bench-results-')), 'compare.json');
  const f = invocationWith('first', { 'vltava-eos-100': run(60_000, { load: [1.5, 2, 3.25] }) });
  saveMerged(path, f);
  const text = readFileSync(path, 'utf8');
  t.true(text.includes('"load": [1.5, 2, 3.25]'));
  t.deepEqual(loadResults(path), f);
});
