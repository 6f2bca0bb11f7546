/**
 * The fast produce encoder (recordBatchEncoder.ts, fix 5 of kafkajsFixes.ts), in-process: for random
 * record sets its output is byte for byte kafkajs' own produce request encoder's. The reference is
 * kafkajs 2.2.4 itself: an upstream copy without any fix (as `npm install` gets it) for inputs it can
 * encode, and, for null header values (which upstream throws on), kafkajs' encoder with only the
 * runtime's null-header fix. The broker round trip is in clientContract.test.ts.
 */
import test from 'ava';
import { applyKafkajsFixes } from './kafkajsFixes.js';
import { upstreamKafkajsCopy } from './kafkajsUnderTest.test.helper.js';
import { crc32c, encodeProduceRequest, type ProduceMessage, type ProduceRequestInput } from './recordBatchEncoder.js';
import { createRequire } from 'node:module';
import path from 'node:path';

const unfixed = upstreamKafkajsCopy();
const fixed = upstreamKafkajsCopy();
applyKafkajsFixes({ kafkajsDir: fixed });
const load = (dir: string, rel: string): any => createRequire(path.join(dir, 'package.json'))(path.join(dir, rel));

type RequestFactory = (input: ProduceRequestInput) => { apiVersion: number; encode(): Promise<{ buffer: Buffer; [k: symbol]: unknown }> };
/** kafkajs' own produce v3 encoder: upstream, and the fixed copy's (null-header fix only). */
const upstreamV3 = load(unfixed, 'src/protocol/requests/produce/v3/request.js') as RequestFactory;
const kafkajsV3 = load(fixed, 'src/protocol/requests/produce/v3/request.js')[Symbol.for('vltava.kafkajsFixes.kafkajsProduceEncoder')] as RequestFactory;
const liveProduce = load(fixed, 'src/protocol/requests/produce/index.js') as { protocol(o: { version: number }): (input: ProduceRequestInput) => { request: ReturnType<RequestFactory> } };
const FAST = Symbol.for('vltava.kafkajsFixes.fastEncoded');

const NOW = 1_764_000_000_000;
/** kafkajs calls Date.now() for records without a timestamp: pin it for both encoders. */
async function pinnedNow<T>(fn: () => Promise<T>): Promise<T> {
  const real = Date.now;
  Date.now = () => NOW;
  try {
    return await fn();
  } finally {
    Date.now = real;
  }
}

// A small seeded PRNG (mulberry32), so a failure names a seed that reproduces it.
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gen(seed: number, opts: { nullHeaders: boolean; maxRecords: number }): ProduceRequestInput {
  const r = rng(seed);
  const int = (n: number): number => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
  const text = (n: number): string => Array.from({ length: n }, () => pick(['a', 'z', '0', ' ', 'é', '€', '𝄞', 'ж', '\u0000'])).join('');
  const data = (): Buffer | string | null | undefined =>
    pick<() => Buffer | string | null | undefined>([
      () => null,
      () => undefined,
      () => '',
      () => Buffer.alloc(0),
      () => text(1 + int(12)),
      () => bytes(8),
      () => bytes(1 + int(40)),
      () => bytes(100 + int(400)),
      () => (r() < 0.1 ? bytes(70_000 + int(5000)) : bytes(33)),
      () => Buffer.from([0, 0, 0, 0]),
    ])();
  const headerValue = (): Buffer | string | null | undefined => {
    const v = pick<() => Buffer | string | null | undefined>([() => text(int(10)), () => bytes(int(20)), () => '', () => null, () => undefined])();
    return opts.nullHeaders ? v : (v ?? 'x');
  };
  const headers = (): ProduceMessage['headers'] => {
    const kind = int(4);
    if (kind === 0) return undefined;
    if (kind === 1) return {};
    const h: Record<string, Buffer | string | null | undefined | (Buffer | string | null | undefined)[]> = {};
    for (let i = int(5); i >= 0; i--) h[pick(['h', 'vltava.error', 'ключ', 'k' + int(100), ''])] = r() < 0.2 ? Array.from({ length: int(3) }, headerValue) : headerValue();
    return h;
  };
  // Timestamps: as kafkajs users pass them (strings of ms), numbers, none, negative, -1, 0, far
  // past and future, and mixed digit counts (kafkajs picks first/max by string order).
  const base = pick([NOW, 1_000, 0, -5_000_000, 999_999_999_999_999, -999_999_999_999_999, 1_700_000_000_000]);
  const timestamp = (): string | number | null | undefined =>
    pick<() => string | number | null | undefined>([
      () => undefined,
      () => null,
      () => String(base + int(10_000)),
      () => String(base - int(10_000)),
      () => base + int(1000),
      () => '-1',
      () => '0',
      () => 0,
      () => String(int(100_000)),
      () => (r() < 0.3 ? Number.MAX_SAFE_INTEGER - int(10) : -Number.MAX_SAFE_INTEGER + int(10)),
      () => String(NOW + int(1000)),
    ])();
  const transactionalId = pick([null, undefined, '', 'tx-' + int(100), 'трансакция']);
  const topicData = Array.from({ length: 1 + int(3) }, (_, ti) => ({
    topic: pick(['words', 'app-store-changelog', 'тема']) + ti,
    partitions: Array.from({ length: 1 + int(4) }, (_, pi) => {
      const n = pick([0, 1, 2, 3, 10, int(opts.maxRecords)]);
      const sameTimestamps = r() < 0.3;
      const ts = timestamp();
      return {
        partition: r() < 0.5 ? pi : String(pi),
        ...(r() < 0.8 ? { firstSequence: int(2 ** 31) } : {}),
        messages: Array.from({ length: n }, () => {
          const m: { key?: unknown; value?: unknown; headers?: unknown; timestamp?: unknown } = {};
          const key = data();
          if (key !== undefined || r() < 0.5) m.key = key;
          m.value = data();
          const h = headers();
          if (h !== undefined) m.headers = h;
          const t = sameTimestamps ? ts : timestamp();
          if (t !== undefined || r() < 0.5) m.timestamp = t;
          return m as ProduceMessage;
        }),
      };
    }),
  }));
  return {
    acks: pick([-1, 0, 1]),
    timeout: pick([30_000, 1, 2 ** 31 - 1]),
    ...(transactionalId !== undefined ? { transactionalId } : {}),
    ...(r() < 0.8 ? { producerId: pick<unknown>(['4711', -1, 123456789012345, 2n ** 62n, '9223372036854775807']) } : {}),
    ...(r() < 0.8 ? { producerEpoch: int(32767) } : {}),
    ...(r() < 0.5 ? { compression: 0 } : {}),
    topicData,
  } as ProduceRequestInput;
}

async function reference(factory: RequestFactory, input: ProduceRequestInput): Promise<Buffer> {
  return (await pinnedNow(() => factory(input).encode())).buffer;
}

test.serial('byte for byte: random record sets equal upstream kafkajs 2.2.4 (no null header values)', async (t) => {
  let fast = 0;
  for (let seed = 1; seed <= 150; seed++) {
    const input = gen(seed, { nullHeaders: false, maxRecords: 300 });
    const ours = encodeProduceRequest(input, () => NOW);
    t.truthy(ours, `seed ${seed}: the fast path takes this input`);
    const theirs = await reference(upstreamV3, input);
    if (!ours!.equals(theirs)) t.fail(`seed ${seed}: bytes differ (${ours!.length} vs ${theirs.length}): ${JSON.stringify(input).slice(0, 400)}`);
    else fast++;
  }
  t.is(fast, 150);
});

test.serial("byte for byte: random record sets with null header values equal kafkajs' encoder with the null-header fix", async (t) => {
  for (let seed = 1001; seed <= 1150; seed++) {
    const input = gen(seed, { nullHeaders: true, maxRecords: 300 });
    const ours = encodeProduceRequest(input, () => NOW);
    t.truthy(ours, `seed ${seed}`);
    const theirs = await reference(kafkajsV3, input);
    if (!ours!.equals(theirs)) t.fail(`seed ${seed}: bytes differ: ${JSON.stringify(input).slice(0, 400)}`);
  }
  t.pass();
});

test.serial('byte for byte: 10,000 word-count records in one partition, and the live produce v3–v7 encoders take the fast path', async (t) => {
  const messages = Array.from({ length: 10_000 }, (_, i) => {
    const value = Buffer.alloc(8);
    value.writeBigInt64BE(BigInt(i * 7));
    return { key: Buffer.from(`word-${i % 997}`), value, timestamp: String(1_764_000_000_000 + (i % 50)), ...(i % 3 === 0 ? { headers: { 'vltava.src': 'x', n: null } } : {}) };
  });
  const input: ProduceRequestInput = { acks: -1, timeout: 30_000, transactionalId: 'app-0_1', producerId: '17', producerEpoch: 2, topicData: [{ topic: 'counts', partitions: [{ partition: 3, firstSequence: 40_000, messages }] }] };
  const theirs = await reference(kafkajsV3, input);
  for (let version = 3; version <= 7; version++) {
    const { request } = liveProduce.protocol({ version })(input);
    t.is(request.apiVersion, version);
    const encoded = await request.encode();
    t.is(encoded[FAST], true, `v${version} goes through the fast encoder`);
    t.true(encoded.buffer.equals(theirs), `v${version} bytes`);
  }
});

test.serial("inputs the fast encoder does not take go to kafkajs' encoder, which behaves exactly as before", async (t) => {
  const m = (over: Record<string, unknown>): ProduceRequestInput =>
    ({ acks: -1, timeout: 1000, transactionalId: 't', producerId: '5', topicData: [{ topic: 't', partitions: [{ partition: 0, messages: [{ key: 'k', value: 'v', timestamp: '1700000000000', ...over }] }] }] }) as unknown as ProduceRequestInput;
  const cases: [string, ProduceRequestInput][] = [
    ['a timestamp beyond 15 digits (int64 max)', m({ timestamp: '9223372036854775807' })],
    ['a timestamp that is not a decimal integer', m({ timestamp: '1.5e12' })],
    ['a timestamp that is not a number', m({ timestamp: 'soon' })],
    ['a fractional number timestamp', m({ timestamp: 1.5 })],
    ['an empty string timestamp', m({ timestamp: '' })],
    ['a numeric header value', m({ headers: { n: 5 } })],
    ['a Uint8Array value', m({ value: new Uint8Array([1, 2]) })],
    ['a number key', m({ key: 7 })],
    ['gzip', { ...m({}), compression: 1 }],
    ['a producer id that is not a number', { ...m({}), producerId: 'x' }],
  ];
  for (const [what, input] of cases) {
    t.is(encodeProduceRequest(input, () => NOW), undefined, `${what}: not taken`);
    const version = 3 + (what.length % 5);
    const theirs = await pinnedNow(async () => {
      try {
        return { bytes: await reference(kafkajsV3, input) };
      } catch (e) {
        return { error: (e as Error).message };
      }
    });
    const ours = await pinnedNow(async () => {
      try {
        const encoded = await liveProduce.protocol({ version })(input).request.encode();
        t.not(encoded[FAST], true);
        return { bytes: encoded.buffer };
      } catch (e) {
        return { error: (e as Error).message };
      }
    });
    t.deepEqual(ours, theirs, what);
  }
});

test('crc32c equals kafkajs\' crc32C on random buffers and slices', (t) => {
  const kafkajsCrc = load(unfixed, 'src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number;
  const r = rng(7);
  for (let i = 0; i < 500; i++) {
    const len = Math.floor(r() * (i < 400 ? 64 : 5000));
    const b = Buffer.from(Array.from({ length: len + 20 }, () => Math.floor(r() * 256)));
    const start = Math.floor(r() * 10);
    const end = start + len;
    t.is(crc32c(b, start, end), kafkajsCrc(b.subarray(start, end)), `length ${len} at ${start}`);
  }
  t.is(crc32c(Buffer.from('123456789')), 0xe3069283, 'the CRC-32C check value');
});

test.serial('a decoded batch gives back exactly what was encoded (kafkajs\' record batch decoder)', async (t) => {
  const Decoder = load(fixed, 'src/protocol/decoder.js');
  const decodeBatch = load(fixed, 'src/protocol/recordBatch/v0/decoder.js');
  const messages = [
    { key: Buffer.from([0xff, 0, 1]), value: Buffer.alloc(0), timestamp: '-1' },
    { key: null, value: 'x'.repeat(200_000), timestamp: '1700000000000', headers: { a: ['1', null], b: Buffer.from([9]) } },
    { key: '𝄞', value: null, timestamp: '999999999999999' },
  ];
  const buf = encodeProduceRequest({ acks: -1, timeout: 1, transactionalId: 'tx', producerId: '99', producerEpoch: 1, topicData: [{ topic: 'x', partitions: [{ partition: 0, messages }] }] })!;
  // request header: txid(2+2) acks(2) timeout(4) topics(4) topic(2+1) partitions(4) partition(4) size(4)
  const d = new Decoder(buf.subarray(2 + 2 + 2 + 4 + 4 + 3 + 4 + 4 + 4));
  const batch = await decodeBatch(d);
  t.is(batch.producerId, '99');
  t.true(batch.inTransaction);
  t.is(batch.firstTimestamp, '-1', "kafkajs' first timestamp: the smallest as a string");
  t.is(batch.maxTimestamp, '999999999999999');
  t.deepEqual(
    batch.records.map((rec: any) => [rec.key, rec.value?.toString() ?? null, rec.timestamp, rec.offset, rec.headers]),
    [
      [Buffer.from([0xff, 0, 1]), '', '-1', '0', {}],
      [null, 'x'.repeat(200_000), '1700000000000', '1', { a: [Buffer.from('1'), null], b: Buffer.from([9]) }],
      [Buffer.from('𝄞'), null, '999999999999999', '2', {}],
    ],
  );
});
