/**
 * The RecordCollector port: where a task's outputs, repartition records and changelog records go.
 * The runtime implements it with the task's (transactional) producer buffer; the test driver
 * with in-memory topics. Records are already serialized.
 */
export type RecordHeaders = Record<string, Buffer | string | undefined>;

export interface CollectedRecord {
  readonly topic: string;
  /** Explicit partition (changelog records: the task's partition); otherwise partitioned by key. */
  readonly partition?: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly timestamp: number;
  readonly headers?: RecordHeaders;
}

export interface RecordCollector {
  send(record: CollectedRecord): void;
}

/**
 * Headers as bytes, for operators that buffer records in a store (suppress, a join's grace buffer):
 * count(2), then per header: key length(2), key (UTF-8), kind (0 undefined, 1 Buffer, 2 string),
 * value length(4), value.
 */
export function encodeHeaders(h: RecordHeaders | undefined): Buffer {
  if (h === undefined) return EMPTY_HEADERS;
  const entries = Object.entries(h);
  if (entries.length === 0) return EMPTY_HEADERS;
  const parts: Buffer[] = [Buffer.alloc(2)];
  parts[0]!.writeUInt16BE(entries.length, 0);
  for (const [k, v] of entries) {
    const kb = Buffer.from(k, 'utf8');
    const vb = v === undefined ? Buffer.alloc(0) : typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    const head = Buffer.allocUnsafe(7);
    head.writeUInt16BE(kb.length, 0);
    head[2] = v === undefined ? 0 : typeof v === 'string' ? 2 : 1;
    head.writeUInt32BE(vb.length, 3);
    parts.push(head.subarray(0, 2), kb, head.subarray(2), vb);
  }
  return Buffer.concat(parts);
}

/** The headers of `encodeHeaders` (undefined for none). */
export function decodeHeaders(b: Buffer): RecordHeaders | undefined {
  if (b.length < 2) return undefined;
  const n = b.readUInt16BE(0);
  if (n === 0) return undefined;
  const out: Record<string, Buffer | string | undefined> = {};
  let o = 2;
  for (let i = 0; i < n; i++) {
    const kl = b.readUInt16BE(o);
    const k = b.toString('utf8', o + 2, o + 2 + kl);
    o += 2 + kl;
    const kind = b[o];
    const vl = b.readUInt32BE(o + 1);
    o += 5;
    out[k] = kind === 0 ? undefined : kind === 2 ? b.toString('utf8', o, o + vl) : Buffer.from(b.subarray(o, o + vl));
    o += vl;
  }
  return out;
}

const EMPTY_HEADERS = Buffer.from([0, 0]);
