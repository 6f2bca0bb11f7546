import type { CollectedRecord, RecordCollector } from '@vltava/dsl';
import type { ChangelogReader, ChangelogRecord } from './api.js';
import { ChangelogTruncatedError } from './changelogTruncatedError.js';

interface Entry {
  readonly offset: number;
  /** undefined: a control record (transaction marker), never returned to readers. */
  readonly record?: { readonly key: Buffer; readonly value: Buffer | null; readonly timestamp: number; readonly headers?: Readonly<Record<string, unknown>> };
  /** The transaction that wrote it; undefined: written without a transaction (committed at once). */
  readonly txn?: number;
}

interface Partition {
  base: number;
  entries: Entry[];
}

type TxnState = 'open' | 'committed' | 'aborted';

/** Offsets of the last record written per changelog topic (all on one partition per task). */
export type LastOffsets = Map<string, number>;

/**
 * An in-memory stand-in for changelog topics that behaves like a transactional Kafka topic read with
 * isolation.level=read_committed: records of open transactions are not visible and hold back the end
 * offset (the LSO); records of aborted transactions are skipped; commit and abort markers occupy an
 * offset each, as in Kafka. For tests and benchmarks; the runtime reads real topics through kafkajs.
 */
export class InMemoryChangelog implements ChangelogReader {
  private readonly partitions = new Map<string, Partition>();
  private readonly txns = new Map<number, TxnState>();
  private nextTxn = 1;
  /** Max records per read batch. */
  batchSize = 1000;

  private part(topic: string, partition: number): Partition {
    const id = `${topic}\x00${partition}`;
    let p = this.partitions.get(id);
    if (p === undefined) {
      p = { base: 0, entries: [] };
      this.partitions.set(id, p);
    }
    return p;
  }

  private push(topic: string, partition: number, e: Omit<Entry, 'offset'>): number {
    const p = this.part(topic, partition);
    const offset = p.base + p.entries.length;
    p.entries.push({ ...e, offset });
    return offset;
  }

  /** Appends a record outside any transaction (visible at once). Returns its offset. */
  append(topic: string, partition: number, key: Buffer, value: Buffer | null, timestamp = 0, headers?: Readonly<Record<string, unknown>>): number {
    return this.push(topic, partition, { record: { key, value, timestamp, ...(headers === undefined ? {} : { headers }) } });
  }

  /** Starts a transaction, like a transactional producer's beginTransaction(). */
  beginTransaction(): ChangelogTransaction {
    const id = this.nextTxn++;
    this.txns.set(id, 'open');
    const touched = new Set<string>();
    const last: LastOffsets = new Map();
    const end = (state: 'committed' | 'aborted'): void => {
      if (this.txns.get(id) !== 'open') throw new Error(`transaction ${id} is already ${this.txns.get(id)}`);
      this.txns.set(id, state);
      for (const tp of touched) {
        const [topic, partition] = tp.split('\x00') as [string, string];
        this.push(topic, Number(partition), { txn: id });
      }
    };
    return {
      id,
      send: (r: CollectedRecord) => {
        if (this.txns.get(id) !== 'open') throw new Error(`transaction ${id} is ${this.txns.get(id)}: cannot send`);
        const partition = r.partition ?? 0;
        touched.add(`${r.topic}\x00${partition}`);
        const offset = this.push(r.topic, partition, { txn: id, record: { key: r.key ?? Buffer.alloc(0), value: r.value, timestamp: r.timestamp, headers: r.headers ?? {} } });
        last.set(r.topic, offset);
      },
      commit: () => {
        end('committed');
        return last;
      },
      abort: () => end('aborted'),
    };
  }

  /** Aborts every open transaction, as a new producer with the same transactional id does (fencing). */
  abortOpenTransactions(): number {
    let n = 0;
    for (const [id, state] of this.txns) {
      if (state !== 'open') continue;
      this.txns.set(id, 'aborted');
      n++;
      for (const [tp, p] of this.partitions) {
        if (p.entries.some((e) => e.txn === id)) {
          const [topic, partition] = tp.split('\x00') as [string, string];
          this.push(topic, Number(partition), { txn: id });
        }
      }
    }
    return n;
  }

  /** Deletes records below `offset` (retention or DeleteRecords). */
  truncate(topic: string, partition: number, offset: number): void {
    const p = this.part(topic, partition);
    const drop = Math.min(Math.max(0, offset - p.base), p.entries.length);
    p.entries.splice(0, drop);
    p.base += drop;
  }

  beginningOffset(topic: string, partition: number): Promise<number> {
    return Promise.resolve(this.part(topic, partition).base);
  }

  /** The last stable offset: the first offset of an open transaction, else the log end. */
  endOffset(topic: string, partition: number): Promise<number> {
    const p = this.part(topic, partition);
    for (const e of p.entries) {
      if (e.txn !== undefined && e.record !== undefined && this.txns.get(e.txn) === 'open') return Promise.resolve(e.offset);
    }
    return Promise.resolve(p.base + p.entries.length);
  }

  async read(
    topic: string,
    partition: number,
    fromOffset: number,
    toOffset: number,
    onBatch: (records: readonly ChangelogRecord[]) => Promise<void> | void,
  ): Promise<void> {
    const p = this.part(topic, partition);
    if (fromOffset < p.base) throw new ChangelogTruncatedError(topic, partition, fromOffset, p.base);
    let batch: ChangelogRecord[] = [];
    const end = Math.min(toOffset, p.base + p.entries.length);
    for (let o = fromOffset; o < end; o++) {
      const e = p.entries[o - p.base] as Entry;
      if (e.record === undefined) continue;
      if (e.txn !== undefined && this.txns.get(e.txn) !== 'committed') continue;
      batch.push(toRecord(e));
      if (batch.length >= this.batchSize) {
        await onBatch(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await onBatch(batch);
  }

  /** All committed records of a partition, in offset order (for assertions). */
  committedRecords(topic: string, partition: number): ChangelogRecord[] {
    const out: ChangelogRecord[] = [];
    for (const e of this.part(topic, partition).entries) {
      if (e.record === undefined || (e.txn !== undefined && this.txns.get(e.txn) !== 'committed')) continue;
      out.push(toRecord(e));
    }
    return out;
  }

  /** A JSON-able snapshot (tests pass changelogs between processes). */
  toJSON(): unknown {
    return {
      txns: [...this.txns],
      nextTxn: this.nextTxn,
      partitions: [...this.partitions].map(([id, p]) => [
        id,
        p.base,
        p.entries.map((e) => [e.txn ?? 0, e.record === undefined ? null : [e.record.key.toString('base64'), e.record.value?.toString('base64') ?? null, e.record.timestamp, headersToJSON(e.record.headers)]]),
      ]),
    };
  }

  static fromJSON(json: unknown): InMemoryChangelog {
    const j = json as {
      txns: [number, TxnState][];
      nextTxn: number;
      partitions: [string, number, [number, [string, string | null, number, Record<string, string> | null] | null][]][];
    };
    const c = new InMemoryChangelog();
    for (const [id, s] of j.txns) c.txns.set(id, s);
    c.nextTxn = j.nextTxn;
    for (const [id, base, entries] of j.partitions) {
      c.partitions.set(id, {
        base,
        entries: entries.map(([txn, r], i) => ({
          offset: base + i,
          ...(txn === 0 ? {} : { txn }),
          ...(r === null ? {} : { record: { key: Buffer.from(r[0], 'base64'), value: r[1] === null ? null : Buffer.from(r[1], 'base64'), timestamp: r[2], ...headersFromJSON(r[3]) } }),
        })),
      });
    }
    return c;
  }
}

/** An open transaction on an InMemoryChangelog; `send` makes it usable as a task's RecordCollector. */
export interface ChangelogTransaction extends RecordCollector {
  readonly id: number;
  /** Commits; returns the offset of the last record sent per topic. */
  commit(): LastOffsets;
  abort(): void;
}

function toRecord(e: Entry): ChangelogRecord {
  const r = e.record as NonNullable<Entry['record']>;
  return { offset: e.offset, key: r.key, value: r.value, timestamp: r.timestamp, ...(r.headers === undefined ? {} : { headers: r.headers }) };
}

function headersToJSON(h: Readonly<Record<string, unknown>> | undefined): Record<string, string> | null {
  if (h === undefined) return null;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = (Buffer.isBuffer(v) ? v : Buffer.from(String(v))).toString('base64');
  return out;
}

function headersFromJSON(h: Record<string, string> | null | undefined): { headers?: Record<string, Buffer> } {
  if (h === null || h === undefined) return {};
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(h)) out[k] = Buffer.from(v, 'base64');
  return { headers: out };
}
