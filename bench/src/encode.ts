/**
 * pnpm bench:encode — the produce path's encoding, kafkajs' encoder against the runtime's fast one
 * (fix 5 of packages/runtime/src/kafka/kafkajsFixes.ts).
 *
 * Each scenario is one Produce request of word-count-like records for one partition (short keys,
 * 8-byte values, no headers or a few, string timestamps as the runtime sends them), encoded and
 * framed as kafkajs' connection does it (`request.encode()`, then `protocol/request.js` adds the
 * request header and the size). "kafkajs" is kafkajs 2.2.4's produce encoder with the runtime's
 * null-header fix (what ran before fix 5); "fast" is the live produce protocol with fix 5. Both
 * must give the same bytes (checked first).
 *
 * Figures: records/s (the best of 3 alternating rounds of ~1 s each), and bytes allocated per
 * record (JS heap + ArrayBuffers, over one request, in a process with a young generation large
 * enough that no GC runs during it; checked). The process re-runs itself with --expose-gc.
 *
 * Then the fetch side (fix 6): the same record sets as the broker returns them (one record batch
 * per scenario) decoded by kafkajs' record batch decoder and by the runtime's (same objects, checked).
 *
 *   node bench/dist/encode.js [--records 1000,10000] [--ms 1000]
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import '@vltava/runtime/kafkajs-fixes';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  const r = spawnSync(process.execPath, ['--expose-gc', '--min-semi-space-size=256', '--max-semi-space-size=256', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const { values: opt } = parseArgs({ options: { records: { type: 'string', default: '1000,10000' }, ms: { type: 'string', default: '1000' } } });
const recordCounts = opt.records.split(',').map(Number);
const roundMs = Number(opt.ms);

// The kafkajs @vltava/runtime uses (its fixes are applied by the import above).
const runtimeRequire = createRequire(createRequire(import.meta.url).resolve('@vltava/runtime/kafkajs-fixes'));
const kafkajsDir = path.dirname(runtimeRequire.resolve('kafkajs/package.json'));
const k = (rel: string): any => runtimeRequire(path.join(kafkajsDir, rel));
const produce = k('src/protocol/requests/produce/index.js');
const createRequest = k('src/protocol/request.js') as (a: { correlationId: number; clientId: string; request: unknown }) => Promise<{ buffer: Buffer }>;
const kafkajsV3 = k('src/protocol/requests/produce/v3/request.js')[Symbol.for('vltava.kafkajsFixes.kafkajsProduceEncoder')] as ((input: unknown) => object) | undefined;
if (kafkajsV3 === undefined) throw new Error('the fast produce encoder is not applied (VLTAVA_KAFKAJS_FAST_ENCODER=off?): nothing to compare');

type Encoder = (input: unknown) => Promise<Buffer>;
const encoders: Record<'kafkajs' | 'fast', Encoder> = {
  kafkajs: async (input) => (await createRequest({ correlationId: 1, clientId: 'bench', request: { ...kafkajsV3(input), apiVersion: 7 } })).buffer,
  fast: async (input) => (await createRequest({ correlationId: 1, clientId: 'bench', request: produce.protocol({ version: 7 })(input).request })).buffer,
};

interface Scenario {
  readonly name: string;
  readonly records: number;
  readonly input: unknown;
}

function scenario(records: number, keys: 'buffer' | 'string', headers: boolean): Scenario {
  const base = 1_764_000_000_000;
  const messages = Array.from({ length: records }, (_, i) => {
    const word = `w${((i * 7919) % 10_000).toString(36)}`;
    const value = Buffer.alloc(8);
    value.writeBigInt64BE(BigInt(i % 1000));
    return {
      key: keys === 'buffer' ? Buffer.from(word) : word,
      value,
      partition: 0,
      timestamp: String(base + (i >> 4)),
      ...(headers ? { headers: { 'vltava.src': 'word-count', 'vltava.seq': Buffer.from([i & 0xff, 1, 2, 3]) } } : {}),
    };
  });
  return {
    name: `${records} records, ${keys} keys, ${headers ? '2 headers' : 'no headers'}`,
    records,
    input: { acks: -1, timeout: 30_000, compression: 0, transactionalId: 'word-count-0_1', producerId: '1000', producerEpoch: 3, topicData: [{ topic: 'word-count-counts-changelog', partitions: [{ partition: 0, firstSequence: 0, messages }] }] },
  };
}

let gcs = 0;
new PerformanceObserver((list) => (gcs += list.getEntries().length)).observe({ entryTypes: ['gc'] });
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

/** Bytes allocated per record over one encode (JS heap and ArrayBuffers), or undefined if a GC ran. */
async function allocatedPerRecord(enc: Encoder, s: Scenario): Promise<number | undefined> {
  await enc(s.input); // warm
  gc!();
  await tick();
  const before = gcs;
  const m0 = process.memoryUsage();
  await enc(s.input);
  const m1 = process.memoryUsage();
  await tick();
  if (gcs !== before) return undefined;
  return (m1.heapUsed - m0.heapUsed + (m1.arrayBuffers - m0.arrayBuffers)) / s.records;
}

async function recordsPerSec(enc: Encoder, s: Scenario): Promise<number> {
  const started = performance.now();
  let n = 0;
  while (performance.now() - started < roundMs) {
    await enc(s.input);
    n += s.records;
  }
  return n / ((performance.now() - started) / 1000);
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const scenarios = recordCounts.flatMap((n) => [scenario(n, 'buffer', false), scenario(n, 'buffer', true), scenario(n, 'string', false)]);
console.log(`node ${process.version}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log('scenario | kafkajs records/s | fast records/s | speed-up | kafkajs B/record | fast B/record');
for (const s of scenarios) {
  const a = await encoders.kafkajs(s.input);
  const b = await encoders.fast(s.input);
  if (!a.equals(b)) throw new Error(`${s.name}: the two encoders' bytes differ`);
  const best = { kafkajs: 0, fast: 0 };
  for (let round = 0; round < 3; round++) {
    for (const name of ['kafkajs', 'fast'] as const) best[name] = Math.max(best[name], await recordsPerSec(encoders[name], s));
  }
  const alloc = { kafkajs: await allocatedPerRecord(encoders.kafkajs, s), fast: await allocatedPerRecord(encoders.fast, s) };
  const a2 = (v: number | undefined): string => (v === undefined ? 'n/a (GC ran)' : fmt(v));
  console.log(`${s.name} (${fmt(b.length / s.records)} B/record on the wire) | ${fmt(best.kafkajs)} | ${fmt(best.fast)} | ${(best.fast / best.kafkajs).toFixed(1)}× | ${a2(alloc.kafkajs)} | ${a2(alloc.fast)}`);
}

// ---- fetch decoding -------------------------------------------------------------------------
const Decoder = k('src/protocol/decoder.js') as new (b: Buffer) => { offset: number };
const liveBatchDecoder = k('src/protocol/recordBatch/v0/decoder.js') as ((d: unknown) => Promise<{ records: unknown[] }>) & Record<symbol, unknown>;
const kafkajsBatchDecoder = liveBatchDecoder[Symbol.for('vltava.kafkajsFixes.kafkajsBatchDecoder')] as typeof liveBatchDecoder | undefined;
if (kafkajsBatchDecoder === undefined) throw new Error('the fast fetch decoder is not applied (VLTAVA_KAFKAJS_FAST_DECODER=off?): nothing to compare');
const decoders: Record<'kafkajs' | 'fast', Encoder> = {
  kafkajs: async (log) => (await kafkajsBatchDecoder(new Decoder(log as Buffer))) as unknown as Buffer,
  fast: async (log) => (await liveBatchDecoder(new Decoder(log as Buffer))) as unknown as Buffer,
};
console.log('');
console.log('fetch: scenario | kafkajs records/s | fast records/s | speed-up | kafkajs B/record | fast B/record');
for (const s of scenarios) {
  // The record batch of the request: after txid, acks, timeout, topic count, topic, partition count, partition, size.
  const request = (await encoders.fast(s.input)).subarray(4 + 2 + 2 + 4 + 2 + 'bench'.length);
  const topicLen = request.readInt16BE(2 + 'word-count-0_1'.length + 2 + 4 + 4);
  const log = request.subarray(2 + 'word-count-0_1'.length + 2 + 4 + 4 + 2 + topicLen + 4 + 4 + 4);
  const d = { ...s, input: log };
  const { isDeepStrictEqual } = await import('node:util');
  if (!isDeepStrictEqual(await decoders.kafkajs(log), await decoders.fast(log))) throw new Error(`${s.name}: the two decoders' records differ`);
  const best = { kafkajs: 0, fast: 0 };
  for (let round = 0; round < 3; round++) {
    for (const name of ['kafkajs', 'fast'] as const) best[name] = Math.max(best[name], await recordsPerSec(decoders[name], d));
  }
  const alloc = { kafkajs: await allocatedPerRecord(decoders.kafkajs, d), fast: await allocatedPerRecord(decoders.fast, d) };
  const a2 = (v: number | undefined): string => (v === undefined ? 'n/a (GC ran)' : fmt(v));
  console.log(`${s.name} | ${fmt(best.kafkajs)} | ${fmt(best.fast)} | ${(best.fast / best.kafkajs).toFixed(1)}× | ${a2(alloc.kafkajs)} | ${a2(alloc.fast)}`);
}
console.log(`load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
