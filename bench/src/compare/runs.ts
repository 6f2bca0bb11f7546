/**
 * The catalogue of `pnpm bench:compare` runs and the `--only` selection.
 *
 * Every run has one exact id. `--only a,b` selects exactly the ids it names; `prefix*` selects every
 * id that starts with `prefix`; `default` the default set; `all` every run. Anything else fails fast,
 * listing the valid ids, before a broker is started.
 */

export type RunKind = 'ceiling' | 'floor' | 'wordcount' | 'recovery';
export type SystemGroup = 'kstreams' | 'flow' | 'vltava';

export interface RunDef {
  readonly id: string;
  readonly kind: RunKind;
  readonly label: string;
  /** For the word-count runs. */
  readonly group?: SystemGroup;
  readonly guarantee?: 'exactly-once' | 'at-least-once';
  readonly commitMs?: number;
  readonly threads?: number;
  /** Vltava with kafkajs' producer grouping made O(n) by a preload in the app process. */
  readonly kafkajsFix?: boolean;
  /** In the default set of `pnpm bench:compare` (sized to finish 1M lines within 30 minutes on 2 cores). */
  readonly inDefault: boolean;
  /**
   * Words/s assumed for the start-of-run estimate when the results file has no figure of this run
   * yet (conservative: figures measured on the shared 2-core box).
   */
  readonly assumedWordsPerSec?: number;
}

const wc = (id: string, label: string, group: SystemGroup, guarantee: 'exactly-once' | 'at-least-once', commitMs: number, inDefault: boolean, assumedWordsPerSec: number, extra: Partial<RunDef> = {}): RunDef => ({
  id,
  kind: 'wordcount',
  label,
  group,
  guarantee,
  commitMs,
  threads: 1,
  inDefault,
  assumedWordsPerSec,
  ...extra,
});

/** In run order: each Vltava run right after the Kafka Streams run it is compared with (same conditions, back to back). */
export const RUNS: readonly RunDef[] = [
  { id: 'ceiling-produce', kind: 'ceiling', label: 'broker ceiling: produce, plain', inDefault: true },
  { id: 'ceiling-produce-txn', kind: 'ceiling', label: 'broker ceiling: produce, transactional (100 ms transactions)', inDefault: true },
  { id: 'ceiling-consume', kind: 'ceiling', label: 'broker ceiling: consume, read_committed', inDefault: true },
  { id: 'latency-floor', kind: 'floor', label: "the harness's own latency: produce → read_committed read, no app", inDefault: true },
  wc('kstreams-eos', 'Kafka Streams, exactly_once_v2, 100 ms', 'kstreams', 'exactly-once', 100, true, 30_000),
  wc('vltava-eos-100', 'Vltava, exactly-once, 100 ms', 'vltava', 'exactly-once', 100, true, 50_000),
  wc('kstreams-eos-2t', 'Kafka Streams, exactly_once_v2, 100 ms, 2 stream threads', 'kstreams', 'exactly-once', 100, true, 35_000, { threads: 2 }),
  wc('vltava-eos-100-2t', 'Vltava, exactly-once, 100 ms, 2 stream threads', 'vltava', 'exactly-once', 100, true, 60_000, { threads: 2 }),
  wc('kstreams-alos', 'Kafka Streams, at_least_once, 100 ms', 'kstreams', 'at-least-once', 100, true, 40_000),
  wc('vltava-alos-100', 'Vltava, at-least-once, 100 ms', 'vltava', 'at-least-once', 100, true, 60_000),
  wc('flow-eos', '@kafkats/flow, exactly_once, 100 ms', 'flow', 'exactly-once', 100, false, 3_000),
  wc('vltava-eos-1000', 'Vltava, exactly-once, 1 s', 'vltava', 'exactly-once', 1000, false, 55_000),
  wc('vltava-alos-1000', 'Vltava, at-least-once, 1 s', 'vltava', 'at-least-once', 1000, false, 60_000),
  wc('vltava-fix-eos-100', 'Vltava + O(n) kafkajs grouping, exactly-once, 100 ms', 'vltava', 'exactly-once', 100, false, 50_000, { kafkajsFix: true }),
  wc('vltava-fix-eos-1000', 'Vltava + O(n) kafkajs grouping, exactly-once, 1 s', 'vltava', 'exactly-once', 1000, false, 55_000, { kafkajsFix: true }),
  wc('vltava-fix-alos-100', 'Vltava + O(n) kafkajs grouping, at-least-once, 100 ms', 'vltava', 'at-least-once', 100, false, 60_000, { kafkajsFix: true }),
  wc('vltava-fix-alos-1000', 'Vltava + O(n) kafkajs grouping, at-least-once, 1 s', 'vltava', 'at-least-once', 1000, false, 60_000, { kafkajsFix: true }),
  { id: 'recovery-vltava', kind: 'recovery', label: 'Vltava, EOS, resume after kill -9', group: 'vltava', inDefault: true },
  { id: 'recovery-kstreams', kind: 'recovery', label: 'Kafka Streams, EOS, resume after kill -9', group: 'kstreams', inDefault: true },
];

export const runIds = (): string[] => RUNS.map((r) => r.id);

export class SelectionError extends Error {
  override readonly name = 'SelectionError';
}

/**
 * Resolves `--only` to the run definitions it names, in catalogue order. Empty: the default set.
 * `kafkajsFix` adds the `vltava-fix-*` runs to an empty selection (the old `--kafkajs-fix` flag).
 */
export function selectRuns(only: string, opts: { kafkajsFix?: boolean } = {}): RunDef[] {
  const terms = only.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (terms.length === 0) return RUNS.filter((r) => r.inDefault || (opts.kafkajsFix === true && r.kafkajsFix === true));
  const picked = new Set<string>();
  const unknown: string[] = [];
  for (const t of terms) {
    if (t === 'all') RUNS.forEach((r) => picked.add(r.id));
    else if (t === 'default') RUNS.filter((r) => r.inDefault).forEach((r) => picked.add(r.id));
    else if (t.endsWith('*')) {
      const prefix = t.slice(0, -1);
      const hits = RUNS.filter((r) => r.id.startsWith(prefix));
      if (hits.length === 0) unknown.push(t);
      hits.forEach((r) => picked.add(r.id));
    } else if (RUNS.some((r) => r.id === t)) picked.add(t);
    else unknown.push(t);
  }
  if (unknown.length > 0) {
    const near = unknown.map((u) => {
      const hits = RUNS.filter((r) => r.id.startsWith(u)).map((r) => r.id);
      return hits.length > 0 ? ` ("${u}" is no id; for the runs starting with it write "${u}*": ${hits.join(', ')})` : '';
    });
    throw new SelectionError(
      `--only: unknown run id${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')}${near.join('')}. Valid ids: ${runIds().join(', ')}; also "prefix*" (e.g. "vltava-*"), "default" and "all".`,
    );
  }
  return RUNS.filter((r) => picked.has(r.id));
}
