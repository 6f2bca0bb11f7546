/**
 * bench/results/compare.json: cumulative results of `pnpm bench:compare` and `pnpm bench:soak`.
 *
 * Every result is stored under its run id and dataset with the invocation that produced it (date, git
 * commit, command line, machine, versions) and the load average when it ended. An invocation merges
 * its results into the file: the latest result of a run id per dataset wins, results of runs it did
 * not make stay. Ratios are computed only from two runs of the same invocation and stored the same
 * way (the latest such pair wins), so a later partial run never pairs its figure with an older one.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ProfileSummary } from './profile.js';
import type { SystemGroup } from './runs.js';

export interface RunResult {
  readonly label: string;
  readonly group: SystemGroup;
  readonly guarantee: 'exactly-once' | 'at-least-once';
  readonly commitMs: number;
  readonly threads?: number;
  readonly ok: boolean;
  readonly lines: number;
  readonly words: number;
  readonly seconds: number;
  readonly linesPerSec: number;
  readonly wordsPerSec: number;
  /** Words / time from the first output to the last: without process start and group join. */
  readonly steadyWordsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms?: number;
  /** Marker lines of the latency phase and their rate (lines/s). */
  readonly latencySamples?: number;
  readonly latencyRate?: number;
  /** Peak resident set of the process (VmHWM; the JVM's too; with worker threads the process total). */
  readonly peakRssMb: number;
  readonly load: readonly number[];
  readonly note: string;
}

export interface CeilingResult {
  readonly label: string;
  readonly recordsPerSec: number;
  readonly load: readonly number[];
  readonly note: string;
}

/** The harness's own end-to-end latency: marker records produced and read back read_committed, no app in between. */
export interface FloorResult {
  readonly label: string;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly samples: number;
  readonly rate: number;
  readonly load: readonly number[];
  readonly note: string;
}

export interface RecoveryResult {
  readonly label: string;
  readonly keys: number;
  readonly ok: boolean;
  readonly resumeMs: number;
  readonly restoredRecords: number;
  readonly restoreMs: number;
  readonly load: readonly number[];
  readonly note: string;
}

export interface SoakResult {
  readonly label: string;
  readonly ok: boolean;
  readonly vocab: number;
  readonly linesPerSec: number;
  readonly wordsPerLine: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly keys: number;
  readonly rssWarmMb: number;
  readonly rssMaxMb: number;
  readonly rssEndMb: number;
  /** Least-squares slope of RSS over the steady part (after warm-up), MiB per minute. */
  readonly rssSlopeMbPerMin: number;
  readonly heapWarmMb: number;
  readonly heapMaxMb: number;
  readonly heapSlopeMbPerMin: number;
  /** Seconds from the end of the input to every count correct. */
  readonly drainSeconds: number;
  readonly p99Ms: number;
  readonly load: readonly number[];
  readonly note: string;
  /** [seconds since start, RSS MiB, heap used MiB], every 5 s (sampled every second). */
  readonly samples: readonly (readonly [number, number, number])[];
}

export type Profile = ProfileSummary & { readonly wordsPerSec: number; readonly load: readonly number[] };

export interface Invocation {
  readonly id: string;
  /** ISO time the invocation started. */
  readonly date: string;
  readonly commit: string;
  readonly command: string;
  readonly machine: string;
  readonly versions: Record<string, string>;
}

export type ResultKind = 'wordcount' | 'ceiling' | 'floor' | 'recovery' | 'soak' | 'profile';
type ResultOf<K extends ResultKind> = K extends 'wordcount' ? RunResult : K extends 'ceiling' ? CeilingResult : K extends 'floor' ? FloorResult : K extends 'recovery' ? RecoveryResult : K extends 'soak' ? SoakResult : Profile;

interface StoredOne<K extends ResultKind> {
  readonly runId: string;
  readonly dataset: string;
  readonly kind: K;
  readonly invocation: string;
  /** ISO time the result was recorded. */
  readonly at: string;
  readonly result: ResultOf<K>;
}

/** One stored result; a union discriminated by `kind`. */
export type StoredResult<K extends ResultKind = ResultKind> = { [P in K]: StoredOne<P> }[K];

export interface RatioFigure {
  readonly runId: string;
  readonly value: number;
  readonly ok: boolean;
}

export interface StoredRatio {
  readonly ratioId: string;
  readonly dataset: string;
  readonly label: string;
  readonly unit: 'words/s' | 'peak RSS' | 'p99' | 'input records/s';
  /** a / b. */
  readonly value: number;
  /** The target, and whether higher is better (≥) or lower (≤). */
  readonly target?: { readonly op: '≥' | '≤'; readonly value: number; readonly text: string };
  readonly a: RatioFigure;
  readonly b: RatioFigure;
  readonly invocation: string;
  readonly at: string;
  readonly load: readonly number[];
}

export interface ResultsFile {
  schema: 2;
  invocations: Record<string, Invocation>;
  results: Record<string, StoredResult>;
  ratios: Record<string, StoredRatio>;
}

export const resultKey = (dataset: string, runId: string): string => `${dataset} :: ${runId}`;

export const emptyResults = (): ResultsFile => ({ schema: 2, invocations: {}, results: {}, ratios: {} });

interface LegacyResults {
  spec: string;
  args?: string;
  machine: string;
  versions: Record<string, string>;
  runs: Record<string, RunResult>;
  ceilings: Record<string, CeilingResult>;
  recovery: Record<string, RecoveryResult>;
  profile?: Profile;
  profileFixed?: Profile;
}

/** The file before schema 2 (one dataset, no dates): its figures kept, under one invocation. */
export function migrateLegacy(old: LegacyResults, date: string): ResultsFile {
  const r = emptyResults();
  const inv: Invocation = {
    id: `legacy-${date}`,
    date,
    commit: (old.versions.vltava ?? '?').replace(/^git /, ''),
    command: (old.args ?? '').split(' | ').map((a) => `pnpm bench:compare ${a}`.trim()).join(' ; '),
    machine: old.machine,
    versions: old.versions,
  };
  r.invocations[inv.id] = inv;
  const put = <K extends ResultKind>(kind: K, runId: string, result: ResultOf<K>): void => {
    r.results[resultKey(old.spec, runId)] = { runId, dataset: old.spec, kind, invocation: inv.id, at: date, result } as StoredResult;
  };
  for (const [id, x] of Object.entries(old.runs ?? {})) put('wordcount', id, x);
  for (const [id, x] of Object.entries(old.ceilings ?? {})) put('ceiling', id, x);
  for (const [id, x] of Object.entries(old.recovery ?? {})) put('recovery', id, x);
  if (old.profile) put('profile', 'profile', old.profile);
  if (old.profileFixed) put('profile', 'profile-fixed', old.profileFixed);
  return r;
}

/** Reads the file (schema 2 or the legacy one); a missing file is empty. */
export function loadResults(path: string, legacyDate = () => new Date().toISOString()): ResultsFile {
  if (!existsSync(path)) return emptyResults();
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Partial<ResultsFile> & Partial<LegacyResults>;
  if (raw.schema === 2) return { schema: 2, invocations: raw.invocations ?? {}, results: raw.results ?? {}, ratios: raw.ratios ?? {} };
  if (typeof raw.spec === 'string') return migrateLegacy(raw as LegacyResults, legacyDate());
  throw new Error(`${path} is not a bench:compare results file (no "schema": 2 and no legacy "spec"); move it away or pass --results <another file>`);
}

/**
 * Merges one invocation's results into `into` (read from disk just before, so concurrent or earlier
 * invocations are kept): its results and ratios replace those with the same key, nothing else changes.
 * Invocations no longer referenced are dropped.
 */
export function mergeResults(into: ResultsFile, mine: ResultsFile): ResultsFile {
  const out: ResultsFile = { schema: 2, invocations: { ...into.invocations, ...mine.invocations }, results: { ...into.results, ...mine.results }, ratios: { ...into.ratios, ...mine.ratios } };
  const used = new Set([...Object.values(out.results).map((x) => x.invocation), ...Object.values(out.ratios).map((x) => x.invocation)]);
  for (const id of Object.keys(out.invocations)) if (!used.has(id)) delete out.invocations[id];
  return out;
}

/** JSON with two-space indent, but arrays of numbers (load averages, soak samples) on one line each. */
export function formatJson(x: unknown): string {
  return JSON.stringify(x, null, 2).replace(/\[\s*(-?[\d.e+-]+(?:,\s*-?[\d.e+-]+)*)\s*\]/g, (_m, inner: string) => `[${inner.split(/,\s*/).join(', ')}]`);
}

/** Re-reads `path`, merges `mine` into it and writes it atomically; returns the merged file. */
export function saveMerged(path: string, mine: ResultsFile, legacyDate?: () => string): ResultsFile {
  const merged = mergeResults(loadResults(path, legacyDate), mine);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${formatJson(merged)}\n`);
  renameSync(tmp, path);
  return merged;
}

// ---------------------------------------------------------------------------------------------
// Ratios: the pairs the targets name, from one invocation's results only
// ---------------------------------------------------------------------------------------------

interface RatioDef {
  readonly id: string;
  readonly label: string;
  readonly a: string;
  readonly b: string;
  readonly unit: StoredRatio['unit'];
  readonly target?: StoredRatio['target'];
}

export const RATIOS: readonly RatioDef[] = [
  { id: 'eos-words', label: 'Vltava EOS / Kafka Streams EOS, words/s, 1 thread each, 100 ms', a: 'vltava-eos-100', b: 'kstreams-eos', unit: 'words/s', target: { op: '≥', value: 1.5, text: '≥ 1.5×' } },
  { id: 'eos-words-2t', label: 'Vltava EOS / Kafka Streams EOS, words/s, 2 threads each, 100 ms', a: 'vltava-eos-100-2t', b: 'kstreams-eos-2t', unit: 'words/s', target: { op: '≥', value: 1.5, text: '≥ 1.5×' } },
  { id: 'alos-words', label: 'Vltava ALOS / Kafka Streams ALOS, words/s, 1 thread each, 100 ms', a: 'vltava-alos-100', b: 'kstreams-alos', unit: 'words/s' },
  { id: 'eos-rss', label: 'Vltava EOS / Kafka Streams EOS, peak RSS, 1 thread each', a: 'vltava-eos-100', b: 'kstreams-eos', unit: 'peak RSS', target: { op: '≤', value: 1, text: '≤ 1×' } },
  { id: 'eos-rss-2t', label: 'Vltava EOS / Kafka Streams EOS, peak RSS, 2 threads each', a: 'vltava-eos-100-2t', b: 'kstreams-eos-2t', unit: 'peak RSS', target: { op: '≤', value: 1, text: '≤ 1×' } },
  { id: 'eos-p99', label: 'Vltava EOS / Kafka Streams EOS, p99 latency, 1 thread each', a: 'vltava-eos-100', b: 'kstreams-eos', unit: 'p99', target: { op: '≤', value: 1, text: '≤ 1×' } },
  { id: 'eos-p99-2t', label: 'Vltava EOS / Kafka Streams EOS, p99 latency, 2 threads each', a: 'vltava-eos-100-2t', b: 'kstreams-eos-2t', unit: 'p99', target: { op: '≤', value: 1, text: '≤ 1×' } },
  { id: 'flow-words', label: 'Vltava EOS / @kafkats/flow EOS, words/s', a: 'vltava-eos-100', b: 'flow-eos', unit: 'words/s', target: { op: '≥', value: 2, text: '≥ 2×' } },
  { id: 'eos-ceiling', label: 'Vltava EOS input records/s / broker transactional produce ceiling', a: 'vltava-eos-100', b: 'ceiling-produce-txn', unit: 'input records/s', target: { op: '≥', value: 0.5, text: '≥ 50%' } },
  { id: 'kstreams-ceiling', label: 'Kafka Streams EOS input records/s / broker transactional produce ceiling (for reference)', a: 'kstreams-eos', b: 'ceiling-produce-txn', unit: 'input records/s' },
  { id: 'fix-eos-words', label: 'Vltava + O(n) kafkajs grouping, EOS / Kafka Streams EOS, words/s', a: 'vltava-fix-eos-100', b: 'kstreams-eos', unit: 'words/s' },
];

function figure(x: StoredResult | undefined, unit: StoredRatio['unit']): RatioFigure | undefined {
  if (!x) return undefined;
  if (x.kind === 'ceiling') {
    const c = x.result as CeilingResult;
    return { runId: x.runId, value: c.recordsPerSec, ok: Number.isFinite(c.recordsPerSec) && c.recordsPerSec > 0 };
  }
  if (x.kind !== 'wordcount') return undefined;
  const r = x.result as RunResult;
  const value = unit === 'words/s' ? r.wordsPerSec : unit === 'peak RSS' ? r.peakRssMb : unit === 'p99' ? r.p99Ms : r.linesPerSec;
  return { runId: x.runId, value, ok: r.ok && Number.isFinite(value) };
}

/** The ratios whose two runs are both in `mine` (one invocation), per dataset. */
export function ratiosOf(mine: ResultsFile, invocation: string): StoredRatio[] {
  const out: StoredRatio[] = [];
  const datasets = new Set(Object.values(mine.results).map((x) => x.dataset));
  for (const dataset of datasets)
    for (const d of RATIOS) {
      const ra = mine.results[resultKey(dataset, d.a)];
      const rb = mine.results[resultKey(dataset, d.b)];
      if (ra?.invocation !== invocation || rb?.invocation !== invocation) continue;
      const a = figure(ra, d.unit);
      const b = figure(rb, d.unit);
      if (!a || !b) continue;
      const la = (ra.result as { load: readonly number[] }).load;
      const lb = (rb.result as { load: readonly number[] }).load;
      // Dated by the later of its two runs; its load is the higher of theirs.
      const at = ra.at > rb.at ? ra.at : rb.at;
      out.push({ ratioId: d.id, dataset, label: d.label, unit: d.unit, value: a.value / b.value, ...(d.target ? { target: d.target } : {}), a, b, invocation, at, load: la.map((x, i) => Math.max(x, lb[i] ?? 0)) });
    }
  return out;
}

/** Does `r` meet its target? undefined when it has none or a run did not finish. */
export function meetsTarget(r: StoredRatio): boolean | undefined {
  if (!r.target || !r.a.ok || !r.b.ok) return undefined;
  return r.target.op === '≥' ? r.value >= r.target.value : r.value <= r.target.value;
}

/** The word-count latency bound: (repartition hops + 1) × commit interval + 50 ms. */
export const latencyBoundMs = (commitMs: number, hops = 1): number => (hops + 1) * commitMs + 50;
