/**
 * The audit: did every input record take effect exactly once downstream? It reads an input topic
 * and an output (a topic, or a sink's table) read_committed, matches records by a deterministic id,
 * and reports lost, duplicated and unexpected ids with their offsets, plus lag. It runs on a live
 * system without stopping it, because it audits up to a watermark, snapshotting in causal order:
 *
 *   1. P: where the processor stands: the committed offsets of its consumer group on the input
 *      (`group`), or a transactional sink's offsets in the database (`sinkId`). Optional.
 *   2. W_out: the output's end offsets (or the table, read now).
 *   3. W_in: the input's end offsets.
 *
 * Under exactly-once the outputs of every input below P committed with (or before) P, so each of
 * those ids must be in the output below W_out: missing = **lost**. An input id at or past P and not
 * in the output yet is **pending** (lag), not a violation. Every output record below W_out was
 * caused by an input written before it, so below W_in: an output id with no input is **unexpected**.
 * An id more than once in the output is **duplicated**. With no P, every input id must be in the
 * output (an audit of a stopped or drained system).
 */
import '@vltava/runtime/kafkajs-fixes';
import { Kafka, logLevel, type KafkaConfig, type KafkaMessage } from 'kafkajs';
import type { SinkAdapter } from './adapter.js';
import { quoteIdent, quoteTable } from './adapter.js';
import { DEFAULT_OFFSETS_TABLE, readOffsets } from './sql.js';

/** A record as id functions see it. */
export interface AuditRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, Buffer | undefined>>;
}

/**
 * How to get a record's id: its key, a header, a top-level field of its JSON value, or a function
 * (`null`: the record is not audited, e.g. an input that is expected to have no output).
 */
export type AuditId = 'key' | { readonly header: string } | { readonly jsonField: string } | ((record: AuditRecord) => string | null);

export interface AuditOptions {
  readonly brokers: readonly string[];
  readonly input: { readonly topic: string; readonly id: AuditId };
  readonly output:
    | { readonly topic: string; readonly id: AuditId }
    | { readonly table: string; readonly adapter: SinkAdapter; readonly idColumn: string };
  /** The processor's consumer group on the input (its committed offsets are P). */
  readonly group?: string;
  /** A transactional sink's id: its offsets in the database are P (table audits). */
  readonly sinkId?: string;
  readonly offsetsTable?: string;
  /** How long to wait for a topic to be readable up to its watermark (default 60 s). */
  readonly timeoutMs?: number;
  readonly kafka?: Partial<KafkaConfig>;
}

export interface IdOccurrence {
  readonly id: string;
  /** `partition@offset` of each occurrence (table audits: the row count). */
  readonly at: readonly string[];
}

export interface AuditReport {
  readonly ok: boolean;
  readonly input: { readonly topic: string; readonly records: number; readonly ids: number; readonly resent: number; readonly watermark: Record<number, number> };
  readonly output: { readonly name: string; readonly records: number; readonly watermark?: Record<number, number> };
  /** P per input partition, when known. */
  readonly processed?: Record<number, number>;
  readonly lost: readonly IdOccurrence[];
  readonly duplicated: readonly IdOccurrence[];
  readonly unexpected: readonly IdOccurrence[];
  /** Input ids past P not yet in the output, and the offset lag (W_in - P summed). */
  readonly lag: { readonly pendingIds: number; readonly offsets: number | undefined };
}

const toRecord = (topic: string, partition: number, m: KafkaMessage): AuditRecord => {
  const headers: Record<string, Buffer | undefined> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    const last = Array.isArray(v) ? v.at(-1) : v;
    headers[k] = last === undefined ? undefined : Buffer.from(last);
  }
  return { topic, partition, offset: Number(m.offset), key: m.key, value: m.value, headers };
};

export function idOf(id: AuditId, r: AuditRecord): string | null {
  if (id === 'key') return r.key === null ? null : r.key.toString('utf8');
  if (typeof id === 'function') return id(r);
  if ('header' in id) return r.headers[id.header]?.toString('utf8') ?? null;
  if (r.value === null) return null;
  try {
    const v = (JSON.parse(r.value.toString('utf8')) as Record<string, unknown>)[id.jsonField];
    return v === undefined || v === null ? null : String(v);
  } catch {
    return null;
  }
}

export async function endOffsets(kafka: Kafka, topic: string): Promise<{ low: Map<number, number>; high: Map<number, number> }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offs = await admin.fetchTopicOffsets(topic);
    return { low: new Map(offs.map((o) => [o.partition, Number(o.low)])), high: new Map(offs.map((o) => [o.partition, Number(o.high)])) };
  } finally {
    await admin.disconnect();
  }
}

/**
 * Every committed record of `topic` below `ends` (read_committed). Progress counts transaction
 * markers too (END_BATCH_PROCESS), so a partition ending in a marker is finished.
 */
export async function readUpTo(kafka: Kafka, topic: string, ends: ReadonlyMap<number, number>, lows: ReadonlyMap<number, number>, timeoutMs = 60_000): Promise<AuditRecord[]> {
  const reached = new Map<number, number>();
  const out: AuditRecord[] = [];
  const pending = (): number[] => [...ends].filter(([p, e]) => e > (lows.get(p) ?? 0) && (reached.get(p) ?? 0) < e).map(([p]) => p);
  if (pending().length === 0) return out;
  const consumer = kafka.consumer({ groupId: `vltava-audit-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`, readUncommitted: false });
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const advance = (p: number, next: number): void => {
    if (next > (reached.get(p) ?? 0)) reached.set(p, next);
    if (pending().length === 0) done();
  };
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    if (e.payload.topic === topic) advance(e.payload.partition, Number(e.payload.lastOffset) + 1);
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const end = ends.get(batch.partition) ?? 0;
        for (const m of batch.messages) if (Number(m.offset) < end) out.push(toRecord(topic, batch.partition, m));
        if (batch.messages.length > 0) advance(batch.partition, Number(batch.messages.at(-1)!.offset) + 1);
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      finished,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`audit: ${topic} not readable up to its watermark within ${timeoutMs} ms (partitions ${pending().join(', ')} at ${JSON.stringify([...reached])}, watermark ${JSON.stringify([...ends])}); an open transaction holds the last stable offset back?`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect();
  }
  // Each record once (a rebalance of our private group could refetch).
  const seen = new Set<string>();
  return out.filter((r) => {
    const k = `${r.partition}@${r.offset}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const record = (m: Map<number, number>): Record<number, number> => Object.fromEntries([...m].sort((a, b) => a[0] - b[0]));

export async function audit(opts: AuditOptions): Promise<AuditReport> {
  const kafka = new Kafka({ clientId: 'vltava-audit', logLevel: logLevel.NOTHING, ...opts.kafka, brokers: [...opts.brokers] });
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const out = opts.output;
  // 1. P
  let processed: Map<number, number> | undefined;
  if (opts.group !== undefined) {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const [t] = await admin.fetchOffsets({ groupId: opts.group, topics: [opts.input.topic] });
      processed = new Map((t?.partitions ?? []).map((p) => [p.partition, Math.max(0, Number(p.offset))]));
    } finally {
      await admin.disconnect();
    }
  } else if (opts.sinkId !== undefined && 'table' in out) {
    await out.adapter.connect();
    processed = await readOffsets(out.adapter, out.adapter.dialect, opts.offsetsTable ?? DEFAULT_OFFSETS_TABLE, opts.sinkId, opts.input.topic);
  }
  // 2. the output
  const outIds = new Map<string, string[]>();
  let outputRecords = 0;
  let outWatermark: Map<number, number> | undefined;
  if ('topic' in out) {
    const { low, high } = await endOffsets(kafka, out.topic);
    outWatermark = high;
    const recs = await readUpTo(kafka, out.topic, high, low, timeoutMs);
    for (const r of recs) {
      const id = idOf(out.id, r);
      if (id === null) continue;
      outputRecords++;
      const l = outIds.get(id) ?? [];
      l.push(`${r.partition}@${r.offset}`);
      outIds.set(id, l);
    }
  } else {
    await out.adapter.connect();
    const col = quoteIdent(out.idColumn);
    const rows = await out.adapter.all(`SELECT ${col} AS id, COUNT(*) AS n FROM ${quoteTable(out.table)} GROUP BY ${col}`);
    for (const r of rows) {
      const n = Number(r.n);
      outputRecords += n;
      outIds.set(String(r.id), Array.from({ length: n }, () => 'row'));
    }
  }
  // 3. W_in and the input
  const { low: inLow, high: inHigh } = await endOffsets(kafka, opts.input.topic);
  const inputs = await readUpTo(kafka, opts.input.topic, inHigh, inLow, timeoutMs);
  const inIds = new Map<string, AuditRecord[]>();
  let resent = 0;
  for (const r of inputs) {
    const id = idOf(opts.input.id, r);
    if (id === null) continue;
    const l = inIds.get(id);
    if (l === undefined) inIds.set(id, [r]);
    else {
      resent++;
      l.push(r);
    }
  }
  const lost: IdOccurrence[] = [];
  let pendingIds = 0;
  for (const [id, recs] of inIds) {
    if (outIds.has(id)) continue;
    // Lost if its first occurrence is below P (or there is no P).
    const first = recs[0]!;
    const p = processed?.get(first.partition);
    if (processed !== undefined && (p === undefined || first.offset >= p)) pendingIds++;
    else lost.push({ id, at: recs.map((r) => `${r.partition}@${r.offset}`) });
  }
  const duplicated: IdOccurrence[] = [];
  const unexpected: IdOccurrence[] = [];
  for (const [id, at] of outIds) {
    if (at.length > 1) duplicated.push({ id, at });
    if (!inIds.has(id)) unexpected.push({ id, at });
  }
  let lagOffsets: number | undefined;
  if (processed !== undefined) {
    lagOffsets = 0;
    for (const [p, end] of inHigh) lagOffsets += Math.max(0, end - (processed.get(p) ?? inLow.get(p) ?? 0));
  }
  const byOffset = (a: IdOccurrence, b: IdOccurrence): number => a.at[0]!.localeCompare(b.at[0]!, 'en', { numeric: true });
  return {
    ok: lost.length === 0 && duplicated.length === 0 && unexpected.length === 0,
    input: { topic: opts.input.topic, records: inputs.length, ids: inIds.size, resent, watermark: record(inHigh) },
    output: { name: 'topic' in out ? out.topic : `table ${out.table}`, records: outputRecords, ...(outWatermark === undefined ? {} : { watermark: record(outWatermark) }) },
    ...(processed === undefined ? {} : { processed: record(processed) }),
    lost: lost.sort(byOffset),
    duplicated: duplicated.sort(byOffset),
    unexpected: unexpected.sort(byOffset),
    lag: { pendingIds, offsets: lagOffsets },
  };
}

/** The report as text: one summary line per check, then up to `limit` ids of each violation. */
export function formatReport(r: AuditReport, limit = 20): string {
  const lines: string[] = [];
  lines.push(`input   ${r.input.topic}: ${r.input.records} records, ${r.input.ids} ids (${r.input.resent} resends) up to ${JSON.stringify(r.input.watermark)}`);
  lines.push(`output  ${r.output.name}: ${r.output.records} records${r.output.watermark === undefined ? '' : ` up to ${JSON.stringify(r.output.watermark)}`}`);
  if (r.processed !== undefined) lines.push(`processed up to ${JSON.stringify(r.processed)}; lag ${r.lag.offsets} offsets, ${r.lag.pendingIds} ids pending`);
  const show = (name: string, l: readonly IdOccurrence[], where: string): void => {
    lines.push(`${name.padEnd(11)} ${l.length}`);
    for (const o of l.slice(0, limit)) lines.push(`  ${o.id}  ${where} ${o.at.join(', ')}`);
    if (l.length > limit) lines.push(`  ... and ${l.length - limit} more`);
  };
  show('lost', r.lost, 'input at');
  show('duplicated', r.duplicated, 'output at');
  show('unexpected', r.unexpected, 'output at');
  lines.push(r.ok ? 'audit: PASS' : 'audit: FAIL');
  return lines.join('\n');
}
