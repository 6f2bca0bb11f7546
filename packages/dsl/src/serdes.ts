/**
 * Built-in serdes. Every factory returns a fresh, stateless `Serde` that obeys the contract in
 * `serde.ts`: null is never passed in (the caller handles Kafka nulls), and serialization is
 * deterministic.
 *
 * Order: `string`, `bytes`, `orderedInt64` and `orderedDouble` serialize to bytes whose
 * unsigned byte order is the natural order of the values, so they are safe for range-scanned
 * keys. `msgpack`, `json`, `int64` and `double` are not order-preserving (negative numbers sort
 * after positive ones), so use them for values and point-lookup keys only.
 */
import { Packr } from 'msgpackr';
import type { Serde } from './serde.js';
import type { Windowed } from './stores.js';

const TWO_32 = 2 ** 32;

function checkSafeInteger(n: number, serde: string): void {
  if (!Number.isSafeInteger(n)) {
    throw new TypeError(`${serde} serde: ${String(n)} is not a safe integer; use Serdes.double() for fractions or Serdes.msgpack() for bigints`);
  }
}

function writeInt64(buf: Buffer, n: number, offset: number): void {
  // Direct byte writes: much cheaper than writeInt32BE/writeUInt32BE on the per-record path.
  const hi = Math.floor(n / TWO_32);
  const lo = n - hi * TWO_32;
  buf[offset] = hi >>> 24;
  buf[offset + 1] = hi >>> 16;
  buf[offset + 2] = hi >>> 8;
  buf[offset + 3] = hi;
  buf[offset + 4] = lo >>> 24;
  buf[offset + 5] = lo >>> 16;
  buf[offset + 6] = lo >>> 8;
  buf[offset + 7] = lo;
}

function readInt64(buf: Buffer, offset: number): number {
  const hi = (buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!; // signed
  const lo = ((buf[offset + 4]! << 24) | (buf[offset + 5]! << 16) | (buf[offset + 6]! << 8) | buf[offset + 7]!) >>> 0;
  return hi * TWO_32 + lo;
}

/**
 * UTF-8 decode; short ASCII strings (most keys) are built directly, which is faster than toString:
 * up to 8 bytes with one String.fromCharCode call (one string, no intermediate ones), up to 16 char
 * by char. Anything else, or any byte above 127, goes through Buffer#toString('utf8').
 */
function decodeUtf8(data: Buffer): string {
  const n = data.length;
  if (n <= 8) {
    const s = asciiUpTo8(data, n);
    if (s !== undefined) return s;
    return data.toString('utf8');
  }
  if (n > 16) return data.toString('utf8');
  let s = '';
  for (let i = 0; i < n; i++) {
    const c = data[i]!;
    if (c > 127) return data.toString('utf8');
    s += String.fromCharCode(c);
  }
  return s;
}

function asciiUpTo8(d: Buffer, n: number): string | undefined {
  const f = String.fromCharCode;
  switch (n) {
    case 0:
      return '';
    case 1: {
      const a = d[0]!;
      return a < 128 ? f(a) : undefined;
    }
    case 2: {
      const a = d[0]!, b = d[1]!;
      return (a | b) < 128 ? f(a, b) : undefined;
    }
    case 3: {
      const a = d[0]!, b = d[1]!, c = d[2]!;
      return (a | b | c) < 128 ? f(a, b, c) : undefined;
    }
    case 4: {
      const a = d[0]!, b = d[1]!, c = d[2]!, e = d[3]!;
      return (a | b | c | e) < 128 ? f(a, b, c, e) : undefined;
    }
    case 5: {
      const a = d[0]!, b = d[1]!, c = d[2]!, e = d[3]!, g = d[4]!;
      return (a | b | c | e | g) < 128 ? f(a, b, c, e, g) : undefined;
    }
    case 6: {
      const a = d[0]!, b = d[1]!, c = d[2]!, e = d[3]!, g = d[4]!, h = d[5]!;
      return (a | b | c | e | g | h) < 128 ? f(a, b, c, e, g, h) : undefined;
    }
    case 7: {
      const a = d[0]!, b = d[1]!, c = d[2]!, e = d[3]!, g = d[4]!, h = d[5]!, i = d[6]!;
      return (a | b | c | e | g | h | i) < 128 ? f(a, b, c, e, g, h, i) : undefined;
    }
    default: {
      const a = d[0]!, b = d[1]!, c = d[2]!, e = d[3]!, g = d[4]!, h = d[5]!, i = d[6]!, j = d[7]!;
      return (a | b | c | e | g | h | i | j) < 128 ? f(a, b, c, e, g, h, i, j) : undefined;
    }
  }
}

/**
 * UTF-8 encode; a short ASCII string (most keys) is copied char by char into a pooled Buffer, which
 * is about twice as fast as Buffer.from (no native call). Anything else goes through Buffer.from.
 */
function encodeUtf8(value: string): Buffer {
  const n = value.length;
  if (n > 32) return Buffer.from(value, 'utf8');
  for (let i = 0; i < n; i++) if (value.charCodeAt(i) > 127) return Buffer.from(value, 'utf8');
  const buf = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) buf[i] = value.charCodeAt(i);
  return buf;
}

const stringSerde: Serde<string> = {
  name: 'string',
  serialize: encodeUtf8,
  deserialize: decodeUtf8,
};

const bytesSerde: Serde<Buffer> = {
  name: 'bytes',
  serialize: (value) => value,
  deserialize: (data) => data,
};

const jsonSerde: Serde<unknown> = {
  name: 'json',
  serialize: (value) => Buffer.from(JSON.stringify(value), 'utf8'),
  deserialize: (data) => JSON.parse(data.toString('utf8')) as unknown,
};

const int64Serde: Serde<number> = {
  name: 'int64',
  serialize(value) {
    checkSafeInteger(value, 'int64');
    const buf = Buffer.allocUnsafe(8);
    writeInt64(buf, value, 0);
    return buf;
  },
  deserialize(data) {
    if (data.length !== 8) throw new RangeError(`int64 serde: expected 8 bytes, got ${data.length}`);
    return readInt64(data, 0);
  },
};

const orderedInt64Serde: Serde<number> = {
  name: 'ordered-int64',
  serialize(value) {
    checkSafeInteger(value, 'ordered-int64');
    const buf = Buffer.allocUnsafe(8);
    writeInt64(buf, value, 0);
    buf[0] = buf[0]! ^ 0x80; // flip the sign bit: negatives sort before positives
    return buf;
  },
  deserialize(data) {
    if (data.length !== 8) throw new RangeError(`ordered-int64 serde: expected 8 bytes, got ${data.length}`);
    const copy = Buffer.from(data);
    copy[0] = copy[0]! ^ 0x80;
    return readInt64(copy, 0);
  },
};

const int32Serde: Serde<number> = {
  name: 'int32',
  serialize(value) {
    const buf = Buffer.allocUnsafe(4);
    buf.writeInt32BE(value, 0);
    return buf;
  },
  deserialize(data) {
    if (data.length !== 4) throw new RangeError(`int32 serde: expected 4 bytes, got ${data.length}`);
    return data.readInt32BE(0);
  },
};

const doubleSerde: Serde<number> = {
  name: 'double',
  serialize(value) {
    const buf = Buffer.allocUnsafe(8);
    buf.writeDoubleBE(value, 0);
    return buf;
  },
  deserialize(data) {
    if (data.length !== 8) throw new RangeError(`double serde: expected 8 bytes, got ${data.length}`);
    return data.readDoubleBE(0);
  },
};

const orderedDoubleSerde: Serde<number> = {
  name: 'ordered-double',
  serialize(value) {
    const buf = Buffer.allocUnsafe(8);
    buf.writeDoubleBE(value === 0 ? 0 : value, 0); // -0 and 0 encode alike
    if ((buf[0]! & 0x80) !== 0) {
      for (let i = 0; i < 8; i++) buf[i] = ~buf[i]! & 0xff; // negative: invert every bit
    } else {
      buf[0] = buf[0]! | 0x80; // positive: set the sign bit
    }
    return buf;
  },
  deserialize(data) {
    if (data.length !== 8) throw new RangeError(`ordered-double serde: expected 8 bytes, got ${data.length}`);
    const copy = Buffer.from(data);
    if ((copy[0]! & 0x80) !== 0) copy[0] = copy[0]! & 0x7f;
    else for (let i = 0; i < 8; i++) copy[i] = ~copy[i]! & 0xff;
    return copy.readDoubleBE(0);
  },
};

function msgpackSerde<T>(): Serde<T> {
  // No records extension and no shared structures: every buffer decodes on its own, forever.
  const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
  return {
    name: 'msgpack',
    serialize: (value) => packr.pack(value),
    deserialize: (data) => packr.unpack(data) as T,
  };
}

/**
 * A windowed key: the inner key's bytes, then the window start and end as 8-byte big-endian
 * numbers. All windows of one key are contiguous and sorted by start, so a window store can
 * range-scan `[key|from, key|to]`. Timestamps must be non-negative.
 */
function windowedSerde<K>(inner: Serde<K>): Serde<Windowed<K>> {
  return {
    name: `windowed<${inner.name}>`,
    serialize(value, topic) {
      const keyBytes = inner.serialize(value.key, topic);
      const buf = Buffer.allocUnsafe(keyBytes.length + 16);
      keyBytes.copy(buf, 0);
      writeInt64(buf, value.window.start, keyBytes.length);
      writeInt64(buf, value.window.end, keyBytes.length + 8);
      return buf;
    },
    deserialize(data, topic) {
      if (data.length < 16) throw new RangeError(`windowed serde: expected at least 16 bytes, got ${data.length}`);
      const keyLen = data.length - 16;
      return {
        key: inner.deserialize(data.subarray(0, keyLen), topic),
        window: { start: readInt64(data, keyLen), end: readInt64(data, keyLen + 8) },
      };
    },
  };
}

export const Serdes = {
  /** UTF-8 strings. Order-preserving (byte order = code point order). */
  string: (): Serde<string> => stringSerde,
  /** Raw bytes, passed through. Order-preserving. */
  bytes: (): Serde<Buffer> => bytesSerde,
  /** JSON text. Deterministic only if your objects build their keys in the same order. */
  json: <T>(): Serde<T> => jsonSerde as Serde<T>,
  /** msgpack (msgpackr): compact, fast, the default for internal topics and stores. */
  msgpack: <T>(): Serde<T> => msgpackSerde<T>(),
  /** 8-byte big-endian two's complement integer (Kafka's LongSerde). Safe integers only. */
  int64: (): Serde<number> => int64Serde,
  /** 8-byte integer with the sign bit flipped, so byte order = numeric order (range scans). */
  orderedInt64: (): Serde<number> => orderedInt64Serde,
  /** 4-byte big-endian integer (Kafka's IntegerSerde). */
  int32: (): Serde<number> => int32Serde,
  /** 8-byte big-endian IEEE 754 double (Kafka's DoubleSerde). */
  double: (): Serde<number> => doubleSerde,
  /** 8-byte double transformed so byte order = numeric order (range scans). */
  orderedDouble: (): Serde<number> => orderedDoubleSerde,
  /** A windowed key: inner key bytes + 8-byte start + 8-byte end, sorted by key then start. */
  windowed: <K>(inner: Serde<K>): Serde<Windowed<K>> => windowedSerde(inner),
} as const;

/** Writes a non-negative or negative safe integer as 8 big-endian bytes at `offset`. */
export { writeInt64, readInt64 };
