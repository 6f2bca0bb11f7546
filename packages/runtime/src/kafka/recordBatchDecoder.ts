/**
 * A record batch decoder (RecordBatch v2, uncompressed) for the fetch path that builds exactly the
 * objects kafkajs 2.2.4's `protocol/recordBatch/v0/decoder.js` builds — the same fields, strings and
 * Buffer views into the fetch response — without Long objects (two BigInt parses, adds and prints
 * per record in kafkajs), a Decoder and a slice per record, or a spread object per header.
 *
 * It returns undefined for anything it does not decode exactly — a compressed batch, a batch that
 * runs past the fetched bytes (kafkajs' partial-batch error), a record that runs past its batch or
 * its length, offsets or timestamps beyond 2^53, varlongs over 7 bytes — and the caller uses kafkajs'
 * decoder for that batch, which then behaves (or throws) exactly as before.
 *
 * Installed into kafkajs by kafkajsFixes.ts (fix 6, `fast-fetch-decoder`). The read_committed fix
 * (fix 1) works on these objects as on kafkajs' own: it reads `offset`, `key`, `isControlRecord` and
 * `batchContext`.
 */

const CREATE_TIME = 0;
const LOG_APPEND_TIME = 1;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Thrown inside the decoder when the bytes are not what it decodes exactly; caught below. */
const NOT_TAKEN = new Error('not taken');

let q = 0; // read position
let lim = 0; // end of the current record

function varint(buf: Buffer): number {
  let result = 0;
  let shift = 0;
  let b: number;
  do {
    if (q >= lim || shift > 28) throw NOT_TAKEN;
    b = buf[q++]!;
    result += (b & 0x7f) << shift;
    shift += 7;
  } while (b >= 0x80);
  return (result >>> 1) ^ -(result & 1);
}

/** A zigzag varlong of at most 7 bytes (49 bits: exact in a double). */
function varlong(buf: Buffer): number {
  let result = 0;
  let mul = 1;
  let b: number;
  let n = 0;
  do {
    if (q >= lim || n === 7) throw NOT_TAKEN;
    b = buf[q++]!;
    result += (b & 0x7f) * mul;
    mul *= 128;
    n++;
  } while (b >= 0x80);
  return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
}

function bytes(buf: Buffer): Buffer | null {
  const len = varint(buf);
  if (len === -1) return null;
  if (len < 0 || q + len > lim) throw NOT_TAKEN;
  const v = buf.subarray(q, q + len);
  q += len;
  return v;
}

function safeNumber(s: string): number {
  const n = Number(s);
  if (!(n >= -MAX_SAFE && n <= MAX_SAFE)) throw NOT_TAKEN;
  return n;
}

export interface DecodedRecordBatch {
  readonly batch: Record<string, unknown> & { records: unknown[] };
  /** Where the batch ends in the fetch buffer (kafkajs forwards its decoder there). */
  readonly end: number;
}

/**
 * Decodes the record batch at `start` of `buf` (a fetch response's record set) as kafkajs does, or
 * returns undefined (see the module comment).
 */
export function decodeRecordBatch(buf: Buffer, start: number): DecodedRecordBatch | undefined {
  try {
    return decode(buf, start);
  } catch (e) {
    if (e === NOT_TAKEN || e instanceof RangeError) return undefined;
    throw e;
  }
}

function decode(buf: Buffer, start: number): DecodedRecordBatch | undefined {
  if (start + 12 + 49 > buf.length) return undefined;
  const length = buf.readInt32BE(start + 8);
  const p = start + 12;
  const end = p + length;
  if (length < 49 || end > buf.length) return undefined;
  const attributes = buf.readInt16BE(p + 9);
  if ((attributes & 0x07) !== 0) return undefined; // compressed: kafkajs decompresses
  const firstOffset = buf.readBigInt64BE(start).toString();
  const partitionLeaderEpoch = buf.readInt32BE(p);
  const magicByte = buf.readInt8(p + 4);
  const lastOffsetDelta = buf.readInt32BE(p + 11);
  const firstTimestamp = buf.readBigInt64BE(p + 15).toString();
  const maxTimestamp = buf.readBigInt64BE(p + 23).toString();
  const producerId = buf.readBigInt64BE(p + 31).toString();
  const producerEpoch = buf.readInt16BE(p + 39);
  const firstSequence = buf.readInt32BE(p + 41);
  const count = buf.readInt32BE(p + 45);
  const inTransaction = (attributes & 0x10) > 0;
  const isControlBatch = (attributes & 0x20) > 0;
  const timestampType = (attributes & 0x08) > 0 ? LOG_APPEND_TIME : CREATE_TIME;
  const recordContext = {
    firstOffset,
    firstTimestamp,
    partitionLeaderEpoch,
    inTransaction,
    isControlBatch,
    lastOffsetDelta,
    producerId,
    producerEpoch,
    firstSequence,
    maxTimestamp,
    timestampType,
  };
  const batchContext = { ...recordContext, magicByte };
  const baseOffset = safeNumber(firstOffset);
  const baseTimestamp = safeNumber(firstTimestamp);
  // kafkajs: LOG_APPEND_TIME && maxTimestamp (a non-empty string: always) ? maxTimestamp : first + delta
  const appendTime = timestampType === LOG_APPEND_TIME && maxTimestamp !== '';
  let records: unknown[];
  if (count === -1) records = [];
  else {
    if (count < 0) return undefined;
    records = new Array(count);
    q = p + 49;
    for (let i = 0; i < count; i++) {
      lim = end;
      const len = varint(buf);
      if (len < 0 || q + len > end) return undefined;
      lim = q + len;
      const recordEnd = lim;
      const recordAttributes = buf.readInt8(q++);
      if (q > lim) return undefined;
      const timestampDelta = varlong(buf);
      let timestamp: string;
      if (appendTime) timestamp = maxTimestamp;
      else {
        const t = baseTimestamp + timestampDelta;
        if (!(t >= -MAX_SAFE && t <= MAX_SAFE)) return undefined;
        timestamp = String(t);
      }
      const offsetDelta = varint(buf);
      const o = baseOffset + offsetDelta;
      if (!(o >= -MAX_SAFE && o <= MAX_SAFE)) return undefined;
      const key = bytes(buf);
      const value = bytes(buf);
      const headerCount = varint(buf);
      const headers: Record<string, unknown> = {};
      for (let h = 0; h < headerCount; h++) {
        const keyLen = varint(buf);
        let headerKey: string | null = null;
        if (keyLen !== -1) {
          if (keyLen < 0 || q + keyLen > lim) return undefined;
          headerKey = buf.toString('utf8', q, q + keyLen);
          q += keyLen;
        }
        const headerValue = bytes(buf);
        // kafkajs: { ...obj, [key]: obj[key] === undefined ? value : Array.isArray(obj[key]) ? obj[key].concat([value]) : [obj[key], value] }
        const k = String(headerKey);
        const prev = headers[k];
        // A key Object.prototype has ('__proto__', 'toString'): kafkajs' quirks are its own to keep.
        if (prev !== undefined && !Object.prototype.hasOwnProperty.call(headers, k)) return undefined;
        headers[k] = prev === undefined ? headerValue : Array.isArray(prev) ? prev.concat([headerValue]) : [prev, headerValue];
      }
      q = recordEnd;
      records[i] = {
        magicByte,
        attributes: recordAttributes,
        timestamp,
        offset: String(o),
        key,
        value,
        headers,
        isControlRecord: isControlBatch,
        batchContext,
      };
    }
  }
  return { batch: { ...recordContext, records }, end };
}
