/**
 * The fast fetch decoder (recordBatchDecoder.ts, fix 6 of kafkajsFixes.ts), in-process: random
 * fetch responses decoded through the live fetch v11 response module of a kafkajs copy with the
 * runtime's fixes give exactly (deep equality, Buffers by content) what an upstream kafkajs 2.2.4
 * copy decodes; read_committed over the fast decoder is covered by kafkajsPatch.test.ts and the
 * broker tests in clientContract.test.ts.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import test from 'ava';
import { applyKafkajsFixes } from './kafkajsFixes.js';
import { upstreamKafkajsCopy } from './kafkajsUnderTest.test.helper.js';
import { decodeRecordBatch } from './recordBatchDecoder.js';

const unfixed = upstreamKafkajsCopy();
const fixed = upstreamKafkajsCopy();
applyKafkajsFixes({ kafkajsDir: fixed });
const load = (dir: string, rel: string): any => createRequire(path.join(dir, 'package.json'))(path.join(dir, rel));

const Encoder = load(fixed, 'src/protocol/encoder.js');
const Record = load(fixed, 'src/protocol/recordBatch/record/v0/index.js'); // with null header values
const crc32C = load(fixed, 'src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number;
const { lookupCodec } = load(fixed, 'src/protocol/message/compression/index.js');

const decodeV11 = (dir: string): ((b: Buffer) => Promise<any>) => load(dir, 'src/protocol/requests/fetch/index.js').protocol({ version: 11 })({ maxWaitTime: 0, minBytes: 1, maxBytes: 1, topics: [] }).response.decode;
const fastDecode = decodeV11(fixed);
const kafkajsDecode = decodeV11(unfixed);

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

interface Spec {
  base: bigint;
  attributes: number;
  producerId: bigint;
  firstTimestamp: bigint;
  records: { key: Buffer | null; value: Buffer | null; headers?: Record<string, unknown>; timestampDelta: number }[];
}

async function batchBytes(s: Spec): Promise<Buffer> {
  const records = s.records.map((r, i) => Record({ offsetDelta: i, timestampDelta: r.timestampDelta, key: r.key, value: r.value, headers: r.headers }));
  const body = new Encoder().writeInt16(s.attributes).writeInt32(records.length - 1).writeInt64(s.firstTimestamp.toString()).writeInt64((s.firstTimestamp + 100n).toString()).writeInt64(s.producerId.toString()).writeInt16(2).writeInt32(5);
  if ((s.attributes & 7) === 0) {
    body.writeInt32(records.length);
    for (const r of records) body.writeEncoder(r);
  } else {
    const e = new Encoder();
    e.writeEncoderArray(records);
    body.writeInt32(records.length).writeBuffer(await lookupCodec(s.attributes & 7).compress(e));
  }
  const batch = new Encoder().writeInt32(9).writeInt8(2).writeUInt32(crc32C(body.buffer)).writeEncoder(body);
  return new Encoder().writeInt64(s.base.toString()).writeBytes(batch.buffer).buffer;
}

function fetchResponse(log: Buffer): Buffer {
  return new Encoder()
    .writeInt32(0)
    .writeInt16(0)
    .writeInt32(0)
    .writeInt32(1)
    .writeString('t')
    .writeInt32(1)
    .writeInt32(0)
    .writeInt16(0)
    .writeInt64(1000)
    .writeInt64(1000)
    .writeInt64(0)
    .writeInt32(1)
    .writeInt64(7)
    .writeInt64(3)
    .writeInt32(-1)
    .writeBytes(log).buffer;
}

function genSpecs(seed: number): Spec[] {
  const r = rng(seed);
  const int = (n: number): number => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
  const data = (): Buffer | null => pick([null, Buffer.alloc(0), bytes(8), bytes(1 + int(30)), Buffer.from('é€𝄞'), Buffer.from([0, 0, 0, 0]), r() < 0.05 ? bytes(20_000) : bytes(3)]);
  let base = BigInt(pick([0, 5, 1_000_000, 2 ** 40]));
  return Array.from({ length: 1 + int(5) }, () => {
    const n = pick([1, 2, 5, int(200)]) || 1;
    const spec: Spec = {
      base,
      attributes: pick([0, 0x10, 0x20 | 0x10, 0x08, 0x08 | 0x10, 0, 1]),
      producerId: BigInt(pick([-1, 0, 4711, 2 ** 50])),
      firstTimestamp: BigInt(pick([-1, 0, 1_764_000_000_000, 999_999_999_999_999])),
      records: Array.from({ length: n }, () => {
        const h = int(4);
        const headers =
          h === 0
            ? undefined
            : h === 1
              ? { a: data(), b: 'text' }
              : h === 2
                ? { [pick(['x', 'ключ', ''])]: [data(), data()], dup: null }
                : { k: Buffer.from([1]) };
        return { key: data(), value: data(), headers, timestampDelta: pick([0, 1, -1, int(100_000), -int(100_000), 2 ** 40]) };
      }),
    };
    base += BigInt(n + int(3));
    return spec;
  });
}

test('random fetch responses decode to exactly what upstream kafkajs decodes, and the fast path takes the uncompressed batches', async (t) => {
  let taken = 0;
  let batches = 0;
  for (let seed = 1; seed <= 120; seed++) {
    const specs = genSpecs(seed);
    const parts = await Promise.all(specs.map(batchBytes));
    let log = Buffer.concat(parts);
    // Sometimes a partial batch at the end, as a fetch with maxBytes returns.
    if (seed % 4 === 0 && parts.length > 1) log = log.subarray(0, log.length - 1 - Math.floor(parts.at(-1)!.length / 2));
    let at = 0;
    for (const [i, p] of parts.entries()) {
      if (at + p.length > log.length) break;
      batches++;
      if (decodeRecordBatch(log, at) !== undefined) taken++;
      else t.true((specs[i]!.attributes & 7) !== 0, `seed ${seed} batch ${i}: an uncompressed batch was not taken`);
      at += p.length;
    }
    const bytes = fetchResponse(log);
    const ours = await fastDecode(bytes);
    const theirs = await kafkajsDecode(bytes);
    if (!isDeepStrictEqual(ours, theirs)) t.fail(`seed ${seed}: decoded responses differ`);
  }
  t.log(`${taken} of ${batches} batches through the fast decoder`);
  t.true(taken > batches / 2);
});

test("header keys Object.prototype has, duplicate keys and a null key decode as kafkajs decodes them", async (t) => {
  // kafkajs' header reduce: obj[key] === undefined ? value : ... — '__proto__' and 'toString' are never undefined there.
  const header = (key: string | null, value: Buffer | null): Buffer => {
    const e = new Encoder();
    if (key === null) e.writeVarInt(-1);
    else e.writeVarIntString(key);
    return e.writeVarIntBytes(value).buffer;
  };
  const record = (headers: Buffer[]): Buffer => {
    const inner = new Encoder().writeInt8(0).writeVarLong(0).writeVarInt(0).writeVarIntBytes(Buffer.from('k')).writeVarIntBytes(Buffer.from('v')).writeVarInt(headers.length);
    for (const h of headers) inner.writeBuffer(h);
    return new Encoder().writeVarInt(inner.size()).writeEncoder(inner).buffer;
  };
  for (const headers of [
    [header('__proto__', Buffer.from('x'))],
    [header('toString', Buffer.from('x'))],
    [header('a', Buffer.from('1')), header('a', null), header('a', Buffer.from('3'))],
    [header(null, Buffer.from('n'))],
  ]) {
    const body = new Encoder().writeInt16(0).writeInt32(0).writeInt64(5).writeInt64(5).writeInt64(-1).writeInt16(0).writeInt32(0).writeInt32(1).writeBuffer(record(headers));
    const batch = new Encoder().writeInt32(0).writeInt8(2).writeUInt32(crc32C(body.buffer)).writeEncoder(body);
    const log = new Encoder().writeInt64(0).writeBytes(batch.buffer).buffer;
    const bytes = fetchResponse(log);
    const ours = (await fastDecode(bytes)).responses[0].partitions[0].messages;
    const theirs = (await kafkajsDecode(bytes)).responses[0].partitions[0].messages;
    t.true(isDeepStrictEqual(ours, theirs), JSON.stringify(theirs[0]?.headers));
    t.is(Object.getPrototypeOf(ours[0].headers), Object.getPrototypeOf(theirs[0].headers));
  }
});
