/**
 * A produce request encoder (Produce v3–v7, RecordBatch v2, no compression) that writes the whole
 * request into one buffer sized up front: no Long objects, no intermediate Buffer per record, field,
 * varint or header, and a slicing-by-8 CRC32C over each batch. Its output is byte for byte what
 * kafkajs 2.2.4's produce request encoder (with the runtime's null-header fix) writes for the same
 * input, including kafkajs' quirks (the batch's first and max timestamps are the smallest and the
 * largest timestamp *as strings*, a timestamp of number 0 means "now" for its record's delta).
 *
 * It takes only the shapes it can encode exactly: keys, values and header values that are Buffers,
 * strings, null or undefined; timestamps that are safe integers (numbers, or decimal strings of at
 * most 16 digits that are); no compression. For anything else {@link encodeProduceRequest} returns undefined
 * and the caller uses kafkajs' own encoder, which then behaves (or throws) exactly as before.
 * Deltas beyond ±2^52 are written through BigInt, exactly as kafkajs writes them.
 *
 * Installed into kafkajs by kafkajsFixes.ts (fix 5, `fast-produce-encoder`).
 */

/** What kafkajs' produce protocol passes to a Produce v3+ request (see its `produce/v3/request.js`). */
export interface ProduceRequestInput {
  readonly acks: number;
  readonly timeout: number;
  readonly transactionalId?: string | null;
  readonly producerId?: unknown;
  readonly producerEpoch?: number;
  readonly compression?: number;
  readonly topicData: readonly {
    readonly topic: string;
    readonly partitions: readonly {
      readonly partition: number | string;
      readonly firstSequence?: number;
      readonly messages: readonly ProduceMessage[];
    }[];
  }[];
}

export interface ProduceMessage {
  readonly key?: Buffer | string | null;
  readonly value?: Buffer | string | null;
  readonly timestamp?: string | number | null;
  readonly headers?: Record<string, Buffer | string | null | undefined | (Buffer | string | null | undefined)[]>;
}

// ---------------------------------------------------------------------------------------------
// CRC32C (Castagnoli), slicing-by-8

const CRC_TABLES = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/** CRC32C of `buf[start, end)`, unsigned. */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  const T = CRC_TABLES;
  let crc = -1;
  let i = start;
  const end8 = end - ((end - start) & 7);
  while (i < end8) {
    const a = crc ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    crc =
      T[1792 + (a & 0xff)]! ^
      T[1536 + ((a >>> 8) & 0xff)]! ^
      T[1280 + ((a >>> 16) & 0xff)]! ^
      T[1024 + (a >>> 24)]! ^
      T[768 + buf[i + 4]!]! ^
      T[512 + buf[i + 5]!]! ^
      T[256 + buf[i + 6]!]! ^
      T[buf[i + 7]!]!;
    i += 8;
  }
  while (i < end) crc = T[(crc ^ buf[i++]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// varints (zigzag), without Long

/** Bytes of an unsigned varint of `u` (0 ≤ u < 2^32, as kafkajs treats a zigzagged int32). */
function sizeOfUVarInt(u: number): number {
  return u < 0x80 ? 1 : u < 0x4000 ? 2 : u < 0x200000 ? 3 : u < 0x10000000 ? 4 : 5;
}
/** Bytes of a signed (zigzag) varint of an int32, as kafkajs' `Encoder.sizeOfVarInt`. */
function sizeOfVarInt(v: number): number {
  return sizeOfUVarInt(((v << 1) ^ (v >> 31)) >>> 0);
}

const TWO_52 = 2 ** 52;

/** Bytes of a zigzag varlong of an integer `v` (|v| ≤ 2^52: exact in doubles; else through BigInt). */
function sizeOfVarLong(v: number): number {
  if (v >= -TWO_52 && v <= TWO_52) {
    let z = v >= 0 ? v * 2 : -v * 2 - 1;
    let n = 1;
    while (z >= 128) {
      z = Math.floor(z / 128);
      n++;
    }
    return n;
  }
  let z = zigzag64(v);
  let n = 1;
  while (z >= 128n) {
    z >>= 7n;
    n++;
  }
  return n;
}
function zigzag64(v: number): bigint {
  const b = BigInt(v);
  return BigInt.asUintN(64, (b << 1n) ^ (b >> 63n));
}

// ---------------------------------------------------------------------------------------------
// timestamps

/**
 * A timestamp kafkajs would accept, as a safe integer, or NaN when we do not take it (the caller
 * falls back to kafkajs). Strings: optional '-', 1–16 decimal digits, at most 2^53 - 1 (what
 * `BigInt(s)` and `Number(s)` read alike).
 */
function timestampValue(ts: string | number): number {
  if (typeof ts === 'number') return Number.isSafeInteger(ts) ? ts : NaN;
  const len = ts.length;
  let i = 0;
  let neg = false;
  if (len > 0 && ts.charCodeAt(0) === 45) {
    neg = true;
    i = 1;
  }
  if (len === i || len - i > 16) return NaN;
  let n = 0;
  for (; i < len; i++) {
    const d = ts.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return NaN;
    n = n * 10 + d;
  }
  // Exact while n stays safe; past 2^53 - 1 the rounded n is past it too.
  if (n > Number.MAX_SAFE_INTEGER) return NaN;
  return neg ? -n : n;
}

// ---------------------------------------------------------------------------------------------
// the 64-bit fields kafkajs writes through Long.fromValue

/** `Long.fromValue(v)` of kafkajs' utils/long.js, as a BigInt; undefined when we do not take it. */
function longValue(v: unknown): bigint | undefined {
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 0n;
    return Number.isInteger(v) ? BigInt(v) : undefined;
  }
  if (typeof v === 'bigint') return v;
  if (typeof v === 'string') {
    if (v === 'NaN' || v === 'Infinity' || v === '+Infinity' || v === '-Infinity') return 0n;
    if (!/^-?[0-9]{1,19}$/.test(v)) return undefined;
    return BigInt(v);
  }
  if (v !== null && typeof v === 'object' && typeof (v as { value?: unknown }).value === 'bigint') return (v as { value: bigint }).value;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// scratch: per-record sizes between the sizing pass and the writing pass (reused, not per call)

let scratchInt = new Int32Array(3 * 1024); // [bodySize, keyLen, valueLen] per record
let scratchDelta = new Float64Array(1024);

function ensureScratch(records: number): void {
  if (scratchDelta.length >= records) return;
  let n = scratchDelta.length;
  while (n < records) n *= 2;
  scratchInt = new Int32Array(n * 3);
  scratchDelta = new Float64Array(n);
}

/** Byte length of a key, value or header value: -1 for null/undefined, -2 for a type we do not take. */
function bytesLength(v: unknown): number {
  if (v == null) return -1;
  if (typeof v === 'string') return v.length === 0 ? 0 : Buffer.byteLength(v, 'utf8');
  if (Buffer.isBuffer(v)) return v.length;
  return -2;
}
function sizeOfBytes(len: number): number {
  return len < 0 ? 1 : sizeOfVarInt(len) + len;
}

/** Size of a record's headers (count varint included); -1 when a header value is of a type we do not take. */
/** Whether an object has an own enumerable key, without allocating a key array. */
function hasOwnKeys(o: object): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true;
  return false;
}

function sizeOfHeaders(headers: Record<string, unknown>): number {
  if (!hasOwnKeys(headers)) return 1; // varint(0)
  let count = 0;
  let size = 0;
  const keys = Object.keys(headers);
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k]!;
    const keyLen = Buffer.byteLength(key, 'utf8');
    const hv = headers[key];
    if (Array.isArray(hv)) {
      for (let j = 0; j < hv.length; j++) {
        const len = bytesLength(hv[j]);
        if (len === -2) return -1;
        size += sizeOfVarInt(keyLen) + keyLen + sizeOfBytes(len);
        count++;
      }
    } else {
      const len = bytesLength(hv);
      if (len === -2) return -1;
      size += sizeOfVarInt(keyLen) + keyLen + sizeOfBytes(len);
      count++;
    }
  }
  return sizeOfVarInt(count) + size;
}

interface BatchPlan {
  first: number;
  max: number;
  firstRaw: string | number;
  maxRaw: string | number;
  records: number;
  recordsBytes: number;
}

/**
 * Encodes a Produce v3+ request body (what kafkajs' `request.encode()` returns as an Encoder's
 * buffer), or returns undefined when the input has a shape this encoder does not take.
 * `now` is what kafkajs' `Date.now()` would be for records without a timestamp.
 */
export function encodeProduceRequest(input: ProduceRequestInput, now: () => number = Date.now): Buffer | undefined {
  const compression = input.compression ?? 0;
  if (compression !== 0) return undefined;
  const transactionalId = input.transactionalId ?? null;
  if (transactionalId !== null && typeof transactionalId !== 'string') return undefined;
  const producerId = input.producerId === undefined ? -1n : longValue(input.producerId);
  if (producerId === undefined) return undefined;
  const producerEpoch = input.producerEpoch === undefined ? 0 : input.producerEpoch;
  const attributes = transactionalId ? 0x10 : 0;
  const topicData = input.topicData;
  if (!Array.isArray(topicData)) return undefined;

  // Pass 1: sizes.
  let total = 2 + (transactionalId === null ? 0 : Buffer.byteLength(transactionalId, 'utf8')) + 2 + 4 + 4;
  let totalRecords = 0;
  for (const td of topicData) {
    if (typeof td?.topic !== 'string' || !Array.isArray(td.partitions)) return undefined;
    for (const p of td.partitions) {
      if (!Array.isArray(p?.messages)) return undefined;
      totalRecords += p.messages.length;
    }
  }
  ensureScratch(totalRecords);
  const ints = scratchInt;
  const deltas = scratchDelta;
  const plans: BatchPlan[] = [];
  let r = 0;
  for (const td of topicData) {
    total += 2 + Buffer.byteLength(td.topic, 'utf8') + 4;
    for (const p of td.partitions) {
      const messages = p.messages;
      const n = messages.length;
      const dateNow = now();
      // kafkajs: timestamps = messages' non-null timestamps sorted as strings (Array#sort's
      // default), first = the smallest, max = the largest; none: Date.now().
      let minS: string | undefined;
      let maxS: string | undefined;
      let minRaw: string | number = dateNow;
      let maxRaw: string | number = dateNow;
      // Numbers of 13 digits (every millisecond timestamp from 2001 to 2286) order as their strings
      // do: while every timestamp is one, they are compared as numbers, without a string per record.
      let numeric = true;
      let seen = false;
      let minN = 0;
      let maxN = 0;
      for (let i = 0; i < n; i++) {
        const ts = messages[i]!.timestamp;
        if (ts == null) continue;
        if (typeof ts !== 'string' && typeof ts !== 'number') return undefined;
        if (numeric) {
          if (typeof ts === 'number' && ts >= 1e12 && ts < 1e13 && Number.isInteger(ts)) {
            if (!seen) {
              minN = maxN = ts;
              seen = true;
            } else {
              if (ts < minN) minN = ts;
              if (ts >= maxN) maxN = ts;
            }
            continue;
          }
          numeric = false;
          if (seen) {
            minS = String(minN);
            maxS = String(maxN);
            minRaw = minN;
            maxRaw = maxN;
          }
        }
        const s = typeof ts === 'string' ? ts : String(ts);
        if (minS === undefined) {
          minS = maxS = s;
          minRaw = maxRaw = ts;
        } else {
          if (s < minS) {
            minS = s;
            minRaw = ts;
          }
          if (s >= maxS!) {
            // the last of equal strings after a stable sort
            maxS = s;
            maxRaw = ts;
          }
        }
      }
      if (numeric && seen) {
        minRaw = minN;
        maxRaw = maxN;
      }
      const first = timestampValue(minRaw);
      const max = timestampValue(maxRaw);
      if (Number.isNaN(first) || Number.isNaN(max)) return undefined;
      let recordsBytes = 0;
      for (let i = 0; i < n; i++, r++) {
        const m = messages[i]!;
        const ts = m.timestamp;
        // kafkajs: (message.timestamp || dateNow) - firstTimestamp
        let t: number;
        if (!ts) t = dateNow;
        else {
          t = timestampValue(ts);
          if (Number.isNaN(t)) return undefined;
        }
        const delta = t - first;
        const keyLen = bytesLength(m.key);
        const valueLen = bytesLength(m.value);
        if (keyLen === -2 || valueLen === -2) return undefined;
        let headersSize = 1;
        const headers = m.headers;
        if (headers !== undefined) {
          if (headers === null || typeof headers !== 'object') return undefined;
          headersSize = sizeOfHeaders(headers);
          if (headersSize < 0) return undefined;
        }
        const body = 1 + sizeOfVarLong(delta) + sizeOfVarInt(i) + sizeOfBytes(keyLen) + sizeOfBytes(valueLen) + headersSize;
        ints[r * 3] = body;
        ints[r * 3 + 1] = keyLen;
        ints[r * 3 + 2] = valueLen;
        deltas[r] = delta;
        recordsBytes += sizeOfVarInt(body) + body;
      }
      // partition, record set size, first offset, batch length, then 49 bytes of batch header
      total += 4 + 4 + 8 + 4 + 49 + recordsBytes;
      plans.push({ first, max, firstRaw: minRaw, maxRaw, records: n, recordsBytes });
    }
  }

  // Pass 2: write.
  const buf = Buffer.allocUnsafe(total);
  let o = 0;
  if (transactionalId === null) o = buf.writeInt16BE(-1, o);
  else {
    const len = Buffer.byteLength(transactionalId, 'utf8');
    o = buf.writeInt16BE(len, o);
    o += buf.write(transactionalId, o, len, 'utf8');
  }
  o = buf.writeInt16BE(input.acks, o);
  o = buf.writeInt32BE(input.timeout, o);
  o = buf.writeInt32BE(topicData.length, o);
  r = 0;
  let b = 0;
  for (const td of topicData) {
    const topicLen = Buffer.byteLength(td.topic, 'utf8');
    o = buf.writeInt16BE(topicLen, o);
    o += buf.write(td.topic, o, topicLen, 'utf8');
    o = buf.writeInt32BE(td.partitions.length, o);
    for (const p of td.partitions) {
      const plan = plans[b++]!;
      const batchLength = 49 + plan.recordsBytes;
      o = buf.writeInt32BE(p.partition as number, o);
      o = buf.writeInt32BE(12 + batchLength, o);
      o = buf.writeBigInt64BE(0n, o); // first offset
      o = buf.writeInt32BE(batchLength, o);
      o = buf.writeInt32BE(0, o); // partition leader epoch
      o = buf.writeInt8(2, o); // magic
      const crcAt = o;
      o += 4;
      const bodyStart = o;
      o = buf.writeInt16BE(attributes, o);
      o = buf.writeInt32BE(plan.records - 1, o); // last offset delta
      o = writeInt64(buf, plan.first, o);
      o = writeInt64(buf, plan.max, o);
      o = buf.writeBigInt64BE(BigInt.asIntN(64, producerId), o);
      o = buf.writeInt16BE(producerEpoch, o);
      o = buf.writeInt32BE(p.firstSequence === undefined ? 0 : p.firstSequence, o);
      o = buf.writeInt32BE(plan.records, o);
      const messages = p.messages;
      for (let i = 0; i < plan.records; i++, r++) {
        const m = messages[i]!;
        o = writeVarInt(buf, ints[r * 3]!, o); // record length
        buf[o++] = 0; // record attributes
        o = writeVarLong(buf, deltas[r]!, o);
        o = writeUVarInt(buf, i << 1, o);
        o = writeBytes(buf, m.key, ints[r * 3 + 1]!, o);
        o = writeBytes(buf, m.value, ints[r * 3 + 2]!, o);
        if (m.headers === undefined) buf[o++] = 0;
        else o = writeHeaders(buf, m.headers, o);
      }
      buf.writeUInt32BE(crc32c(buf, bodyStart, o), crcAt);
    }
  }
  if (o !== total) throw new Error(`vltava produce encoder: wrote ${o} bytes of ${total} (a bug: set VLTAVA_KAFKAJS_FAST_ENCODER=off and report it)`);
  return buf;
}

/** An int64 from a safe integer, big-endian two's complement. */
function writeInt64(buf: Buffer, v: number, o: number): number {
  const hi = Math.floor(v / 4294967296);
  buf.writeInt32BE(hi, o);
  buf.writeUInt32BE(v - hi * 4294967296, o + 4);
  return o + 8;
}

function writeUVarInt(buf: Buffer, u: number, o: number): number {
  while (u >= 0x80) {
    buf[o++] = (u & 0x7f) | 0x80;
    u >>>= 7;
  }
  buf[o++] = u;
  return o;
}

function writeVarInt(buf: Buffer, v: number, o: number): number {
  return writeUVarInt(buf, ((v << 1) ^ (v >> 31)) >>> 0, o);
}

function writeVarLong(buf: Buffer, v: number, o: number): number {
  if (v >= -TWO_52 && v <= TWO_52) {
    let z = v >= 0 ? v * 2 : -v * 2 - 1;
    if (z < 0x80000000) return writeUVarInt(buf, z, o);
    while (z >= 128) {
      buf[o++] = (z % 128) | 0x80;
      z = Math.floor(z / 128);
    }
    buf[o++] = z;
    return o;
  }
  let z = zigzag64(v);
  while (z >= 128n) {
    buf[o++] = Number(z & 0x7fn) | 0x80;
    z >>= 7n;
  }
  buf[o++] = Number(z);
  return o;
}

/** A varint length and the bytes (`len` from the sizing pass: -1 for null). */
function writeBytes(buf: Buffer, v: Buffer | string | null | undefined, len: number, o: number): number {
  if (len < 0) {
    buf[o++] = 1; // zigzag(-1)
    return o;
  }
  o = writeVarInt(buf, len, o);
  if (len === 0) return o;
  if (typeof v === 'string') return o + buf.write(v, o, len, 'utf8');
  const src = v as Buffer;
  if (len <= 32) for (let j = 0; j < len; j++) buf[o + j] = src[j]!;
  else buf.set(src, o);
  return o + len;
}

function writeHeaders(buf: Buffer, headers: Record<string, unknown>, o: number): number {
  if (!hasOwnKeys(headers)) {
    buf[o] = 0; // varint(0): no headers
    return o + 1;
  }
  const keys = Object.keys(headers);
  let count = 0;
  for (let k = 0; k < keys.length; k++) {
    const hv = headers[keys[k]!];
    count += Array.isArray(hv) ? hv.length : 1;
  }
  o = writeVarInt(buf, count, o);
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k]!;
    const hv = headers[key];
    if (Array.isArray(hv)) for (let j = 0; j < hv.length; j++) o = writeHeader(buf, key, hv[j], o);
    else o = writeHeader(buf, key, hv, o);
  }
  return o;
}

function writeHeader(buf: Buffer, key: string, value: unknown, o: number): number {
  const keyLen = Buffer.byteLength(key, 'utf8');
  o = writeVarInt(buf, keyLen, o);
  o += buf.write(key, o, keyLen, 'utf8');
  return writeBytes(buf, value as Buffer | string | null, bytesLength(value), o);
}
