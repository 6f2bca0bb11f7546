/**
 * The kafkajs 2.2.4 fixes Vltava depends on, applied by the runtime itself: they travel with the
 * published `@vltava/runtime` (npm does not apply pnpm's `patchedDependencies`), so an app installed
 * with `npm install @vltava/runtime` runs on a fixed kafkajs too. See docs/kafkajs-notes.md.
 *
 * kafkajs is CommonJS; we load its internal modules with `createRequire` (the same module instances
 * the `kafkajs` package uses) and replace behaviour at a level its callers actually reach. Callers that
 * destructured a function at require time (`const Batch = require('./batch')`) keep the old function,
 * so every fix hooks an object that is looked up at call time:
 *
 * 1. **read_committed** (the leak of overlapping aborted transactions, and `isAbortMarker`, which took
 *    any record whose key is 00 00 00 00, e.g. `Serdes.int32()` of 0, for an abort marker). The
 *    connection calls `response.parse()` on the fetch response *module object*, so we wrap `parse` of
 *    every fetch version that carries aborted transactions: it marks the records of aborted
 *    transactions (the Java consumer's algorithm: every aborted transaction that starts at or before
 *    a record is active for its producer until that producer's abort marker, and a marker is a record
 *    of a control batch) and empties `abortedTransactions`, so kafkajs' own filter, patched or not,
 *    drops nothing. A `messages` setter on `Batch.prototype` (the constructor assigns `this.messages`)
 *    then drops the marked records.
 * 2. **null header values** (legal in Kafka) made the record encoder throw at send time: its header
 *    size computation called `Buffer.byteLength(null)`. We replace the record encoder module and
 *    re-evaluate the produce request encoders that captured it (the produce protocol table requires
 *    them lazily, per request). A null (or undefined) header value is encoded as length -1.
 * 3. **O(n²) message grouping** in the producer (`[...current, message]` per message). Its caller
 *    captured it when kafkajs' producer loaded, so this one takes effect only when this module runs
 *    before kafkajs is first loaded (the package entry imports it first) or when the installed
 *    kafkajs is already patched (pnpm workspace). The commit protocol's chunked sends bound the cost
 *    anyway; the check reports whether it is in effect, it is not required.
 * 4. **`admin.fetchTopicOffsets` race**: `admin.fetchTopicMetadata({ topics })` replaces the admin's
 *    cached metadata with only those topics; a concurrent `fetchTopicOffsets(other)` then finds no
 *    partitions and throws `TypeError: Cannot destructure property 'partitions' of 'low.pop(...)'`.
 *    Every admin created by kafkajs' `Kafka.admin()` gets a `fetchTopicOffsets` (and
 *    `...ByTimestamp`) that retries that case and finally throws a retriable {@link KafkaMetadataRaceError}.
 * 5. **Produce encoding cost** (not a correctness fix): kafkajs encodes every record into Buffers of
 *    its own (a Buffer per varint, Long objects for every timestamp delta, copies per record, per
 *    batch and per request). The produce request encoder v3 (v4–v7 build on it) is replaced by one
 *    that writes the whole request into one buffer sized up front ({@link encodeProduceRequest} in
 *    recordBatchEncoder.ts), byte for byte what kafkajs writes; inputs it does not take (compression,
 *    unusual types) go to kafkajs' own encoder. `VLTAVA_KAFKAJS_FAST_ENCODER=off` keeps kafkajs' encoder.
 * 6. **Fetch decoding cost** (not a correctness fix): the record batch decoder (two BigInt parses,
 *    adds and prints per record through Long, a Decoder per record, a spread object per header) is
 *    replaced by one that builds the very same objects ({@link decodeRecordBatch} in
 *    recordBatchDecoder.ts); compressed or unusual batches go to kafkajs' decoder. Its callers
 *    (`fetch/v4/decodeMessages.js`, then the fetch response modules v4–v11) are evaluated again,
 *    before fix 1 wraps them. `VLTAVA_KAFKAJS_FAST_DECODER=off` keeps kafkajs' decoder.
 *
 * `checkKafkajsFixes()` proves in-process (no broker, 10–25 ms cold) that the fixes are in effect on the live
 * code paths: it decodes a crafted fetch response through the real fetch response module and
 * `Batch`, and encodes a produce request with a null header. `requireKafkajsFixes()` refuses to run
 * exactly-once when the read_committed check fails.
 *
 * `VLTAVA_KAFKAJS_FIXES=off` disables applying the fixes (for tests that show a test fails without
 * them); exactly-once then refuses to start.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { StreamsError } from '@vltava/dsl';
import { isDeepStrictEqual } from 'node:util';
import { decodeRecordBatch } from './recordBatchDecoder.js';
import { encodeProduceRequest, type ProduceRequestInput } from './recordBatchEncoder.js';

// Symbol.for: two copies of this module (two @vltava/runtime versions in one app) agree on the marker.
const FIXED = Symbol.for('vltava.kafkajsFixes');
const ownRequire = createRequire(import.meta.url);

/** A record in a decoded fetch response, as kafkajs' record decoder builds it. */
interface FetchedMessage {
  readonly offset: string;
  readonly key: Buffer | null;
  readonly isControlRecord?: boolean;
  readonly batchContext?: { readonly producerId?: string; readonly inTransaction?: boolean; readonly isControlBatch?: boolean };
}
interface FetchedPartition {
  abortedTransactions?: { producerId: string; firstOffset: string }[];
  messages?: FetchedMessage[];
}
type AnyFn = ((...args: any[]) => any) & { [FIXED]?: true };

export interface KafkajsFixOptions {
  /**
   * Directory of the kafkajs package to fix. Default: the kafkajs that `@vltava/runtime` itself
   * resolves (the one its `Kafka` clients come from). Pass another to fix a second copy, e.g. the
   * kafkajs of an app that reads Vltava's output topics read_committed with its own client.
   */
  readonly kafkajsDir?: string;
}

export type KafkajsFixName = 'read-committed' | 'null-header-values' | 'producer-grouping' | 'admin-topic-offsets' | 'fast-produce-encoder' | 'fast-fetch-decoder';

export interface KafkajsFixCheck {
  readonly name: KafkajsFixName;
  readonly ok: boolean;
  /** `exactly-once`: `requireKafkajsFixes` refuses exactly-once without it; `none`: reported only. */
  readonly requiredFor: 'exactly-once' | 'none';
  readonly detail: string;
}

export interface KafkajsFixReport {
  /** True when every check passed. */
  readonly ok: boolean;
  readonly kafkajsDir: string;
  readonly kafkajsVersion: string;
  readonly applied: boolean;
  readonly checks: readonly KafkajsFixCheck[];
}

/** The kafkajs fixes are not in effect: exactly-once would deliver records of aborted transactions. */
export class KafkajsFixMissingError extends StreamsError {
  readonly report: KafkajsFixReport;
  constructor(message: string, report: KafkajsFixReport) {
    super(message, { retriable: false });
    this.report = report;
  }
}

/** kafkajs' admin raced with itself on its metadata cache (see fix 4). Retriable. */
export class KafkaMetadataRaceError extends StreamsError {
  readonly topic: string;
  constructor(message: string, topic: string, cause: unknown) {
    super(message, { retriable: true, cause });
    this.topic = topic;
  }
}

interface Target {
  readonly dir: string;
  readonly version: string;
  readonly req: NodeJS.Require;
  /** Requires `kafkajs/<rel>` of this copy. */
  load(rel: string): any;
  resolve(rel: string): string;
}

function target(opts: KafkajsFixOptions = {}): Target {
  const dir = opts.kafkajsDir !== undefined ? path.resolve(opts.kafkajsDir) : path.dirname(ownRequire.resolve('kafkajs/package.json'));
  const req = createRequire(path.join(dir, 'package.json'));
  const resolve = (rel: string): string => req.resolve(path.join(dir, rel));
  const version = String((req(path.join(dir, 'package.json')) as { version?: unknown }).version);
  return { dir, version, req, resolve, load: (rel) => req(resolve(rel)) };
}

const applied = new Map<string, { groupingEffective: boolean; groupingDetail: string }>();

export function kafkajsFixesDisabled(): boolean {
  return process.env.VLTAVA_KAFKAJS_FIXES === 'off';
}

/**
 * Applies the fixes to a kafkajs copy (default: the runtime's own). Idempotent; called when this
 * module is imported and again by `requireKafkajsFixes`. Does nothing when VLTAVA_KAFKAJS_FIXES=off.
 */
export function applyKafkajsFixes(opts: KafkajsFixOptions = {}): boolean {
  if (kafkajsFixesDisabled()) return false;
  const t = target(opts);
  if (applied.has(t.dir)) return true;
  // Grouping first: it only works if kafkajs' producer has not been loaded yet.
  const grouping = fixProducerGrouping(t);
  // Before the read_committed fix: it re-evaluates the fetch response modules that fix wraps.
  fixFetchDecoder(t);
  fixReadCommitted(t);
  fixNullHeaderValues(t);
  fixProduceEncoder(t);
  fixAdminTopicOffsets(t);
  applied.set(t.dir, grouping);
  return true;
}

// ---------------------------------------------------------------------------------------------
// 1. read_committed

/** Records of aborted transactions, marked by the fetch response hook, dropped by the Batch setter. */
const ABORTED = ((globalThis as any)[Symbol.for('vltava.kafkajsFixes.aborted')] ??= new WeakSet<object>()) as WeakSet<object>;
/**
 * Records marked in ABORTED and not yet dropped by a Batch: while it is 0 (no aborted transaction in
 * sight, the usual case) a Batch keeps kafkajs' array instead of copying it. Shared like ABORTED. A
 * marked record kafkajs drops by itself leaves it above 0: then every Batch filters, as before.
 */
const abortedPending = ((globalThis as any)[Symbol.for('vltava.kafkajsFixes.abortedPending')] ??= { n: 0 }) as { n: number };
const DROPPED = ((globalThis as any)[Symbol.for('vltava.kafkajsFixes.dropped')] ??= new WeakSet<object>()) as WeakSet<object>;

/** A control record's key is version (int16) + type (int16); type 0 is ABORT, 1 is COMMIT. */
function isAbortMarker(m: FetchedMessage): boolean {
  const control = m.isControlRecord === true || m.batchContext?.isControlBatch === true;
  return control && m.key != null && m.key.length >= 4 && m.key.readInt16BE(2) === 0;
}

/** A fetched batch's last stable offset (see the fetch response hook), if the fix is in effect. */
export function lastStableOffsetOf(batch: object): number | undefined {
  const raw = (batch as { rawMessages?: { lastStableOffset?: string } }).rawMessages;
  const v = raw?.lastStableOffset;
  return v === undefined || v === '-1' ? undefined : Number(v);
}

/**
 * Marks the records of aborted transactions in one fetched partition (the Java consumer's
 * algorithm) and empties its aborted transaction list. Exported for the tests.
 */
export function markAbortedRecords(partition: FetchedPartition): void {
  const list = partition.abortedTransactions;
  if (!list || list.length === 0) return;
  const messages = partition.messages ?? [];
  const pending = list
    .map((a) => ({ producerId: String(a.producerId), first: BigInt(a.firstOffset) }))
    .sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const active = new Set<string>();
  let next = 0;
  for (const m of messages) {
    const offset = BigInt(m.offset);
    // Activate EVERY aborted transaction that starts at or before this record.
    while (next < pending.length && pending[next]!.first <= offset) active.add(pending[next++]!.producerId);
    const ctx = m.batchContext;
    if (!ctx) continue; // legacy message sets carry no transactions
    const producerId = String(ctx.producerId);
    if (m.isControlRecord === true || ctx.isControlBatch === true) {
      if (isAbortMarker(m)) active.delete(producerId);
    } else if (ctx.inTransaction === true && active.has(producerId) && !ABORTED.has(m)) {
      ABORTED.add(m);
      abortedPending.n++;
    }
  }
  partition.abortedTransactions = [];
}

function fixReadCommitted(t: Target): void {
  for (let v = 4; v <= 11; v++) {
    const mod = t.load(`src/protocol/requests/fetch/v${v}/response.js`) as { parse: AnyFn };
    const original = mod.parse;
    if (original[FIXED]) continue;
    const parse: AnyFn = async (data: { responses?: { partitions?: FetchedPartition[] }[] }) => {
      const result = (await original(data)) as typeof data;
      for (const topic of result?.responses ?? []) {
        for (const p of topic.partitions ?? []) {
          markAbortedRecords(p);
          // The last stable offset, which kafkajs' Batch does not keep: it keeps this very array as
          // `rawMessages`, so the runtime reads it there (lastStableOffsetOf) to know how far a
          // read_committed partition can be read (timestamp-ordered processing waits on it).
          if (Array.isArray(p.messages)) (p.messages as unknown as { lastStableOffset?: string }).lastStableOffset = (p as { lastStableOffset?: string }).lastStableOffset;
        }
      }
      return result;
    };
    parse[FIXED] = true;
    mod.parse = parse;
  }
  const Batch = t.load('src/consumer/batch.js') as { prototype: object };
  if (!Object.prototype.hasOwnProperty.call(Batch.prototype, 'messages')) {
    Object.defineProperty(Batch.prototype, 'messages', {
      configurable: true,
      get(): undefined {
        return undefined;
      },
      // The constructor's `this.messages = filterAbortedMessages(...).filter(!isControlRecord)` lands
      // here; the records marked above leave, and `messages` becomes a plain own property again.
      set(this: object, value: FetchedMessage[]) {
        let kept = value;
        if (Array.isArray(value) && abortedPending.n > 0) {
          kept = value.filter((m) => {
            if (!ABORTED.has(m)) return true;
            // each marked record counts down once, however many batches drop it
            if (!DROPPED.has(m)) {
              DROPPED.add(m);
              abortedPending.n--;
            }
            return false;
          });
        }
        Object.defineProperty(this, 'messages', {
          value: kept,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      },
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 2. null header values

function fixNullHeaderValues(t: Target): void {
  const recordPath = t.resolve('src/protocol/recordBatch/record/v0/index.js');
  t.req(recordPath);
  const cached = t.req.cache[recordPath]!;
  if (!(cached.exports as AnyFn)[FIXED]) {
    const Encoder = t.load('src/protocol/encoder.js');
    const Header = t.load('src/protocol/recordBatch/header/v0/index.js') as AnyFn;
    const valueSize = (v: unknown): number => (v == null ? -1 : Buffer.isBuffer(v) ? v.length : Buffer.byteLength(String(v)));
    // kafkajs' record encoder (recordBatch/record/v0/index.js) with the header size fixed.
    const Record: AnyFn = ({ offsetDelta = 0, timestampDelta = 0, key, value, headers = {} }: any) => {
      const headersArray = Object.keys(headers).flatMap((headerKey) =>
        !Array.isArray(headers[headerKey])
          ? [{ key: headerKey, value: headers[headerKey] }]
          : headers[headerKey].map((headerValue: unknown) => ({ key: headerKey, value: headerValue })),
      );
      let sizeOfHeaders = Encoder.sizeOfVarInt(headersArray.length);
      for (const h of headersArray) {
        const k = Buffer.byteLength(h.key);
        const v = valueSize(h.value);
        sizeOfHeaders += Encoder.sizeOfVarInt(k) + k + (v < 0 ? Encoder.sizeOfVarInt(-1) : Encoder.sizeOfVarInt(v) + v);
      }
      const sizeOfBody =
        1 + Encoder.sizeOfVarLong(timestampDelta) + Encoder.sizeOfVarInt(offsetDelta) + Encoder.sizeOfVarIntBytes(key) + Encoder.sizeOfVarIntBytes(value) + sizeOfHeaders;
      return new Encoder()
        .writeVarInt(sizeOfBody)
        .writeInt8(0)
        .writeVarLong(timestampDelta)
        .writeVarInt(offsetDelta)
        .writeVarIntBytes(key)
        .writeVarIntBytes(value)
        .writeVarIntArray(headersArray.map((h) => Header({ key: h.key, value: h.value ?? null })));
    };
    Record[FIXED] = true;
    cached.exports = Record;
  }
  // The produce request encoders captured the record encoder when they loaded; the produce protocol
  // table requires them per request, so evaluating them again makes them use the fixed one.
  const requests = [3, 4, 5, 6, 7].map((v) => t.resolve(`src/protocol/requests/produce/v${v}/request.js`));
  for (const p of requests) if (t.req.cache[p] && !(t.req.cache[p]!.exports as AnyFn)[FIXED]) delete t.req.cache[p];
  for (const p of requests) (t.req(p) as AnyFn)[FIXED] = true;
}

// ---------------------------------------------------------------------------------------------
// 5. the produce request encoder

/** On the fast v3 request factory: kafkajs' own (with the null-header fix), for the self-check. */
const KAFKAJS_ENCODER = Symbol.for('vltava.kafkajsFixes.kafkajsProduceEncoder');
/** On an Encoder returned by the fast encoder. */
const FAST_ENCODED = Symbol.for('vltava.kafkajsFixes.fastEncoded');

export function fastEncoderDisabled(): boolean {
  return process.env.VLTAVA_KAFKAJS_FAST_ENCODER === 'off';
}

function fixProduceEncoder(t: Target): void {
  if (fastEncoderDisabled()) return;
  const v3Path = t.resolve('src/protocol/requests/produce/v3/request.js');
  t.req(v3Path);
  const cached = t.req.cache[v3Path]!;
  const original = cached.exports as AnyFn & { [KAFKAJS_ENCODER]?: AnyFn };
  if (original[KAFKAJS_ENCODER]) return;
  const Encoder = t.load('src/protocol/encoder.js') as { prototype: object };
  // kafkajs' connection wraps the payload with `writeEncoder(payload)`, which takes an Encoder
  // (`buf` and `buffer`): an Encoder over our buffer, without allocating another one.
  const asEncoder = (buf: Buffer): object => {
    const e = Object.create(Encoder.prototype) as { buf: Buffer; offset: number; [FAST_ENCODED]?: true };
    e.buf = buf;
    e.offset = buf.length;
    e[FAST_ENCODED] = true;
    return e;
  };
  const fast: AnyFn & { [KAFKAJS_ENCODER]?: AnyFn } = (args: ProduceRequestInput) => {
    const request = original(args) as { encode: () => Promise<unknown> };
    const kafkajsEncode = request.encode;
    request.encode = async () => {
      const buf = encodeProduceRequest(args);
      return buf === undefined ? kafkajsEncode() : asEncoder(buf);
    };
    return request;
  };
  fast[FIXED] = true;
  fast[KAFKAJS_ENCODER] = original;
  cached.exports = fast;
  // v4 builds on v3, v5 on v3, v6 on v5, v7 on v6, each captured at load: evaluate them again, in order.
  const later = [4, 5, 6, 7].map((v) => t.resolve(`src/protocol/requests/produce/v${v}/request.js`));
  for (const p of later) delete t.req.cache[p];
  for (const p of later) (t.req(p) as AnyFn)[FIXED] = true;
}

// ---------------------------------------------------------------------------------------------
// 6. the fetch record batch decoder

/** On the fast record batch decoder: kafkajs' own, for the fallback and the self-check. */
const KAFKAJS_DECODER = Symbol.for('vltava.kafkajsFixes.kafkajsBatchDecoder');

export function fastDecoderDisabled(): boolean {
  return process.env.VLTAVA_KAFKAJS_FAST_DECODER === 'off';
}

function fixFetchDecoder(t: Target): void {
  if (fastDecoderDisabled()) return;
  const batchPath = t.resolve('src/protocol/recordBatch/v0/decoder.js');
  t.req(batchPath);
  const cached = t.req.cache[batchPath]!;
  const original = cached.exports as AnyFn & { [KAFKAJS_DECODER]?: AnyFn };
  if (original[KAFKAJS_DECODER]) return;
  const fast: AnyFn & { [KAFKAJS_DECODER]?: AnyFn } = async (fetchDecoder: { buffer: Buffer; offset: number }) => {
    const decoded = decodeRecordBatch(fetchDecoder.buffer, fetchDecoder.offset);
    if (decoded === undefined) return original(fetchDecoder);
    fetchDecoder.offset = decoded.end;
    return decoded.batch;
  };
  fast[FIXED] = true;
  fast[KAFKAJS_DECODER] = original;
  cached.exports = fast;
  // decodeMessages captured the batch decoder; the fetch responses v4, v5, v7, v8, v11 captured
  // decodeMessages, v6 re-exports v5, v9 v8 and v10 v9: evaluate them again, in order.
  const later = ['src/protocol/requests/fetch/v4/decodeMessages.js', ...[4, 5, 6, 7, 8, 9, 10, 11].map((v) => `src/protocol/requests/fetch/v${v}/response.js`)].map((rel) => t.resolve(rel));
  for (const p of later) delete t.req.cache[p];
  for (const p of later) t.req(p);
}

// ---------------------------------------------------------------------------------------------
// 3. producer grouping

function fixProducerGrouping(t: Target): { groupingEffective: boolean; groupingDetail: string } {
  const groupPath = t.resolve('src/producer/groupMessagesPerPartition.js');
  const callerLoaded = t.req.cache[t.resolve('src/producer/sendMessages.js')] !== undefined;
  t.req(groupPath);
  const cached = t.req.cache[groupPath]!;
  const installed = cached.exports as AnyFn;
  const installedLinear = installed[FIXED] === true || !installed.toString().includes('[...current, message]');
  if (!installed[FIXED]) {
    const group: AnyFn = ({ topic, partitionMetadata, messages, partitioner }: any) => {
      if (partitionMetadata.length === 0) return {};
      const result: Record<string, unknown[]> = {};
      for (const message of messages) {
        // An explicit partition wins without calling the partitioner (the Java producer's rule, and
        // what kafkajs' own partitioners return after building a filtered list per message).
        const explicit = message.partition;
        const partition = typeof explicit === 'number' ? explicit : partitioner({ topic, partitionMetadata, message });
        const current = result[partition];
        if (current === undefined) result[partition] = [message];
        else current.push(message);
      }
      return result;
    };
    group[FIXED] = true;
    cached.exports = group;
  }
  if (!callerLoaded) return { groupingEffective: true, groupingDetail: 'O(n): replaced before kafkajs loaded its producer' };
  if (installedLinear) return { groupingEffective: true, groupingDetail: 'O(n): the installed kafkajs is already patched' };
  return {
    groupingEffective: false,
    groupingDetail: 'O(n²): kafkajs loaded its producer before @vltava/runtime (import @vltava/runtime first); the chunked sends bound the cost',
  };
}

// ---------------------------------------------------------------------------------------------
// 4. admin.fetchTopicOffsets race

const isRaceError = (e: unknown): boolean => e instanceof TypeError || (e as { name?: unknown } | null)?.name === 'TypeError';

export const METADATA_RACE_ATTEMPTS = 5;

function guardTopicOffsets(original: AnyFn, name: string): AnyFn {
  const guarded: AnyFn = async (topic: string, ...rest: unknown[]) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await original(topic, ...rest);
      } catch (e) {
        if (!isRaceError(e)) throw e;
        if (attempt >= METADATA_RACE_ATTEMPTS) {
          throw new KafkaMetadataRaceError(
            `admin.${name}("${topic}") failed ${attempt} times: kafkajs' cached metadata lost the topic while the call ran ` +
              `(a concurrent fetchTopicMetadata replaced it; kafkajs throws "${(e as Error).message}"). Retriable: try again.`,
            topic,
            e,
          );
        }
        await new Promise((r) => setTimeout(r, 20 * attempt));
      }
    }
  };
  guarded[FIXED] = true;
  return guarded;
}

/** Gives an admin client the guarded `fetchTopicOffsets`; admins from `Kafka.admin()` get it already. */
export function guardAdmin<A extends object>(admin: A): A {
  const a = admin as Record<string, AnyFn>;
  for (const name of ['fetchTopicOffsets', 'fetchTopicOffsetsByTimestamp']) {
    if (typeof a[name] === 'function' && !a[name][FIXED]) a[name] = guardTopicOffsets(a[name], name);
  }
  return admin;
}

function fixAdminTopicOffsets(t: Target): void {
  // The cause: `cluster.metadata({ topics })` (behind admin.fetchTopicMetadata and describeCluster)
  // refreshed the shared metadata cache with only `topics`, dropping every other topic the admin
  // works on. Refresh with the admin's target topics as well; the call's result is unchanged.
  const Cluster = t.load('src/cluster/index.js') as { prototype: { metadata: AnyFn } };
  const metadata = Cluster.prototype.metadata;
  if (!metadata[FIXED]) {
    const patched: AnyFn = async function (this: any, { topics = [] }: { topics?: string[] } = {}) {
      return this.retrier(async (bail: (e: unknown) => void) => {
        try {
          const all = [...new Set([...this.targetTopics, ...topics])];
          try {
            await this.brokerPool.refreshMetadataIfNecessary(all);
          } catch (e) {
            // A target topic deleted meanwhile fails the whole refresh: fall back to kafkajs' own.
            if (all.length === topics.length || (e as { type?: unknown }).type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw e;
            await this.brokerPool.refreshMetadataIfNecessary(topics);
          }
          return await this.brokerPool.withBroker(async ({ broker }: any) => broker.metadata(topics));
        } catch (e) {
          if ((e as { type?: unknown }).type === 'LEADER_NOT_AVAILABLE') throw e;
          bail(e);
        }
      });
    };
    patched[FIXED] = true;
    Cluster.prototype.metadata = patched;
  }
  // The symptom, for whatever race remains: retried, then a clear retriable error.
  const Client = t.load('src/index.js') as { prototype: { admin: AnyFn } };
  const original = Client.prototype.admin;
  if (original[FIXED]) return;
  const admin: AnyFn = function (this: unknown, ...args: unknown[]) {
    return guardAdmin(original.apply(this, args));
  };
  admin[FIXED] = true;
  Client.prototype.admin = admin;
}

// ---------------------------------------------------------------------------------------------
// The self-check

/** One record batch of a crafted fetch response (see {@link encodeFetchResponse}). */
export interface CraftedBatch {
  readonly base: number;
  /** -1 for a record batch of no producer. */
  readonly producerId: number;
  readonly transactional?: boolean;
  /** A control batch holding one transaction marker. */
  readonly control?: 'abort' | 'commit';
  readonly records?: readonly { readonly key: Buffer | null; readonly value: Buffer | null }[];
}

/** A record batch (magic 2) as the broker writes it. */
function encodeRecordBatch(t: Target, b: CraftedBatch): Buffer {
  const Encoder = t.load('src/protocol/encoder.js');
  const crc32C = t.load('src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number;
  const Record = t.load('src/protocol/recordBatch/record/v0/index.js') as AnyFn;
  const control = b.control !== undefined;
  const attributes = ((b.transactional ?? b.producerId >= 0) ? 0x10 : 0) | (control ? 0x20 : 0);
  const records = control
    ? [{ key: Buffer.from([0, 0, 0, b.control === 'abort' ? 0 : 1]), value: Buffer.from([0, 0, 0, 0, 0, 0]) }]
    : (b.records ?? []);
  const body = new Encoder()
    .writeInt16(attributes)
    .writeInt32(records.length - 1)
    .writeInt64(1_700_000_000_000)
    .writeInt64(1_700_000_000_000)
    .writeInt64(b.producerId)
    .writeInt16(0)
    .writeInt32(b.base)
    .writeInt32(records.length);
  records.forEach((r, i) => body.writeEncoder(Record({ offsetDelta: i, key: r.key, value: r.value })));
  const batch = new Encoder().writeInt32(0).writeInt8(2).writeUInt32(crc32C(body.buffer)).writeEncoder(body);
  return new Encoder().writeInt64(b.base).writeBytes(batch.buffer).buffer;
}

/**
 * Encodes a Fetch v11 response of one partition holding `batches`, with the broker's list of
 * aborted transactions. For the self-check and the tests; decode it with the fetch response module.
 */
export function encodeFetchResponse(
  spec: { readonly topic: string; readonly batches: readonly CraftedBatch[]; readonly aborted: readonly { readonly producerId: number; readonly firstOffset: number }[] },
  opts: KafkajsFixOptions = {},
): Buffer {
  const t = target(opts);
  const Encoder = t.load('src/protocol/encoder.js');
  const log = Buffer.concat(spec.batches.map((b) => encodeRecordBatch(t, b)));
  const end = spec.batches.reduce((n, b) => Math.max(n, b.base + (b.control ? 1 : (b.records?.length ?? 0))), 0);
  const e = new Encoder()
    .writeInt32(0) // throttle time
    .writeInt16(0) // error code
    .writeInt32(0) // session id
    .writeInt32(1) // topics
    .writeString(spec.topic)
    .writeInt32(1) // partitions
    .writeInt32(0)
    .writeInt16(0)
    .writeInt64(end) // high watermark
    .writeInt64(end) // last stable offset
    .writeInt64(0) // log start offset
    .writeInt32(spec.aborted.length);
  for (const a of spec.aborted) e.writeInt64(a.producerId).writeInt64(a.firstOffset);
  e.writeInt32(-1).writeBytes(log); // preferred read replica, records
  return e.buffer;
}

/**
 * What a kafkajs consumer delivers from a fetch response: decodes it with the live fetch v11
 * response module (`decode`, then `parse`, as the connection does) and builds kafkajs' `Batch`.
 */
export async function consumeFetchResponse(bytes: Buffer, fetchedOffset: number, opts: KafkajsFixOptions = {}): Promise<{ key: Buffer | null; value: Buffer | null; offset: string; headers: unknown }[]> {
  const t = target(opts);
  const response = t.load('src/protocol/requests/fetch/index.js').protocol({ version: 11 })({ maxWaitTime: 0, minBytes: 1, maxBytes: 1, topics: [] }).response;
  const parsed = await response.parse(await response.decode(bytes));
  const Batch = t.load('src/consumer/batch.js');
  const topic = parsed.responses[0];
  return new Batch(topic.topicName, String(fetchedOffset), topic.partitions[0]).messages;
}

const v = (s: string): Buffer => Buffer.from(s);
const INT32_ZERO = Buffer.from([0, 0, 0, 0]);

/**
 * The self-check's fetch: aborted transactions of producers 1 and 2 that began before the fetched
 * range (at 90 and 95), interleaved; producer 1's holds a data record whose key is four zero bytes;
 * then committed transactions. read_committed must deliver c, d, e only.
 */
const SELF_CHECK_FETCH = {
  topic: 'vltava-self-check',
  aborted: [
    { producerId: 1, firstOffset: 90 },
    { producerId: 2, firstOffset: 95 },
  ],
  batches: [
    { base: 100, producerId: 2, records: [{ key: v('k'), value: v('x') }] }, // aborted (producer 2)
    { base: 101, producerId: 1, records: [{ key: INT32_ZERO, value: v('zero') }] }, // aborted (producer 1), key = int32(0)
    { base: 102, producerId: 1, records: [{ key: v('k'), value: v('b') }] }, // aborted (producer 1)
    { base: 103, producerId: 2, records: [{ key: v('k'), value: v('y') }] }, // aborted (producer 2)
    { base: 104, producerId: 1, control: 'abort' },
    { base: 105, producerId: 2, control: 'abort' },
    { base: 106, producerId: 3, records: [{ key: v('k'), value: v('c') }] },
    { base: 107, producerId: 3, control: 'commit' },
    { base: 108, producerId: 1, records: [{ key: v('k'), value: v('d') }] }, // producer 1's next transaction, committed
    { base: 109, producerId: 1, control: 'commit' },
    { base: 110, producerId: -1, records: [{ key: INT32_ZERO, value: v('e') }] }, // no transaction, key = int32(0)
  ],
} as const satisfies Parameters<typeof encodeFetchResponse>[0];

async function checkReadCommitted(t: Target): Promise<KafkajsFixCheck> {
  const name = 'read-committed';
  try {
    const opts = { kafkajsDir: t.dir };
    const got = (await consumeFetchResponse(encodeFetchResponse(SELF_CHECK_FETCH, opts), 100, opts)).map((m) => m.value?.toString());
    const ok = got.join(',') === 'c,d,e';
    return {
      name,
      ok,
      requiredFor: 'exactly-once',
      detail: ok
        ? 'a crafted fetch with interleaved aborted transactions and a key of four zero bytes yields only committed records'
        : `a crafted fetch of aborted transactions [x, int32(0), b, y] then committed [c, d, e] was read_committed as [${got.join(', ')}]: kafkajs would deliver records of aborted transactions`,
    };
  } catch (e) {
    return { name, ok: false, requiredFor: 'exactly-once', detail: `the check itself failed: ${(e as Error).stack ?? String(e)}` };
  }
}

async function checkNullHeaders(t: Target): Promise<KafkajsFixCheck> {
  const name = 'null-header-values';
  const headerKey = 'vltava-null-check';
  const expected = Buffer.concat([Buffer.from([headerKey.length * 2]), Buffer.from(headerKey), Buffer.from([1])]); // zigzag varints: len, key, -1
  const produce = t.load('src/protocol/requests/produce/index.js');
  const failures: string[] = [];
  for (let version = 3; version <= 7; version++) {
    try {
      const { request } = produce.protocol({ version })({
        acks: -1,
        timeout: 1000,
        compression: 0,
        topicData: [{ topic: 't', partitions: [{ partition: 0, firstSequence: 0, messages: [{ key: 'k', value: 'v', headers: { [headerKey]: null } }] }] }],
      });
      const bytes = (await request.encode()).buffer as Buffer;
      if (bytes.indexOf(expected) < 0) failures.push(`v${version}: the null header is not encoded as length -1`);
    } catch (e) {
      failures.push(`v${version}: ${(e as Error).message}`);
    }
  }
  const ok = failures.length === 0;
  return { name, ok, requiredFor: 'none', detail: ok ? 'a header with a null value encodes as length -1' : `sending a null header value fails: ${failures.join('; ')}` };
}

async function checkProduceEncoder(t: Target): Promise<KafkajsFixCheck> {
  const name = 'fast-produce-encoder';
  if (fastEncoderDisabled()) return { name, ok: false, requiredFor: 'none', detail: "not applied (VLTAVA_KAFKAJS_FAST_ENCODER=off): kafkajs' own produce encoder is used" };
  try {
    const v3 = t.load('src/protocol/requests/produce/v3/request.js') as { [KAFKAJS_ENCODER]?: AnyFn };
    const kafkajsV3 = v3[KAFKAJS_ENCODER];
    if (kafkajsV3 === undefined) return { name, ok: false, requiredFor: 'none', detail: "not applied: kafkajs' own produce encoder is used" };
    const produce = t.load('src/protocol/requests/produce/index.js');
    const input = {
      acks: -1,
      timeout: 1000,
      compression: 0,
      transactionalId: 'vltava-check',
      producerId: '4711',
      producerEpoch: 3,
      topicData: [
        {
          topic: 't',
          partitions: [
            {
              partition: 1,
              firstSequence: 7,
              messages: [
                { key: 'k', value: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]), timestamp: '1700000000123' },
                { key: null, value: 'v', timestamp: '1700000000001', headers: { h: 'x', n: null, a: [Buffer.from('y'), 'z'] } },
                { key: Buffer.alloc(0), value: null, timestamp: '-1' },
              ],
            },
          ],
        },
      ],
    };
    const failures: string[] = [];
    const expected = ((await kafkajsV3(input).encode()) as { buffer: Buffer }).buffer;
    for (let version = 3; version <= 7; version++) {
      const { request } = produce.protocol({ version })(input);
      const encoded = (await request.encode()) as { buffer: Buffer; [FAST_ENCODED]?: true };
      if (request.apiVersion !== version) failures.push(`v${version}: apiVersion ${request.apiVersion}`);
      else if (encoded[FAST_ENCODED] !== true) failures.push(`v${version}: kafkajs' encoder ran`);
      else if (!encoded.buffer.equals(expected)) failures.push(`v${version}: the bytes differ from kafkajs' encoder`);
    }
    const ok = failures.length === 0;
    return {
      name,
      ok,
      requiredFor: 'none',
      detail: ok ? "produce requests v3–v7 are encoded into one buffer, byte for byte what kafkajs' encoder writes" : `the fast produce encoder is not in effect: ${failures.join('; ')}`,
    };
  } catch (e) {
    return { name, ok: false, requiredFor: 'none', detail: `the check itself failed: ${(e as Error).stack ?? String(e)}` };
  }
}

async function checkFetchDecoder(t: Target): Promise<KafkajsFixCheck> {
  const name = 'fast-fetch-decoder';
  if (fastDecoderDisabled()) return { name, ok: false, requiredFor: 'none', detail: "not applied (VLTAVA_KAFKAJS_FAST_DECODER=off): kafkajs' own record batch decoder is used" };
  try {
    const live = t.load('src/protocol/recordBatch/v0/decoder.js') as AnyFn & { [KAFKAJS_DECODER]?: AnyFn };
    const kafkajsDecoder = live[KAFKAJS_DECODER];
    if (kafkajsDecoder === undefined) return { name, ok: false, requiredFor: 'none', detail: "not applied: kafkajs' own record batch decoder is used" };
    const Decoder = t.load('src/protocol/decoder.js');
    // The self-check's log (data and control batches, transactional and not) plus headers.
    const Encoder = t.load('src/protocol/encoder.js');
    const crc32C = t.load('src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number;
    const Record = t.load('src/protocol/recordBatch/record/v0/index.js') as AnyFn;
    const body = new Encoder().writeInt16(0x10).writeInt32(1).writeInt64(1_700_000_000_000).writeInt64(1_700_000_000_005).writeInt64(7).writeInt16(1).writeInt32(3).writeInt32(2);
    body.writeEncoder(Record({ offsetDelta: 0, timestampDelta: 5, key: Buffer.from('k'), value: null, headers: { h: ['a', null], x: Buffer.from([1]) } }));
    body.writeEncoder(Record({ offsetDelta: 1, timestampDelta: -3, key: null, value: Buffer.alloc(0) }));
    const withHeaders = new Encoder().writeInt64(200).writeBytes(new Encoder().writeInt32(0).writeInt8(2).writeUInt32(crc32C(body.buffer)).writeEncoder(body).buffer).buffer;
    const log = Buffer.concat([...SELF_CHECK_FETCH.batches.map((b) => encodeRecordBatch(t, b)), withHeaders]);
    const failures: string[] = [];
    const a = new Decoder(log);
    const b = new Decoder(log);
    for (let i = 0; a.offset < log.length; i++) {
      const before = a.offset;
      if (decodeRecordBatch(log, before) === undefined) failures.push(`batch ${i}: not taken by the fast decoder`);
      const ours = await live(a);
      const theirs = await kafkajsDecoder(b);
      if (a.offset === before || a.offset !== b.offset) failures.push(`batch ${i}: the decoder ends at ${a.offset}, kafkajs' at ${b.offset}`);
      if (!isDeepStrictEqual(ours, theirs)) failures.push(`batch ${i}: the records differ from kafkajs' decoder`);
      if (failures.length > 0) break;
    }
    const ok = failures.length === 0;
    return {
      name,
      ok,
      requiredFor: 'none',
      detail: ok ? "fetched record batches are decoded without Long, into exactly the records kafkajs' decoder builds" : `the fast fetch decoder is not in effect: ${failures.join('; ')}`,
    };
  } catch (e) {
    return { name, ok: false, requiredFor: 'none', detail: `the check itself failed: ${(e as Error).stack ?? String(e)}` };
  }
}

/** Runs the in-process checks on a kafkajs copy (default: the runtime's own). No broker involved. */
export async function checkKafkajsFixes(opts: KafkajsFixOptions = {}): Promise<KafkajsFixReport> {
  const t = target(opts);
  const state = applied.get(t.dir);
  const admin = (t.load('src/index.js') as { prototype: { admin: AnyFn } }).prototype.admin[FIXED] === true;
  const checks: KafkajsFixCheck[] = [
    await checkReadCommitted(t),
    await checkNullHeaders(t),
    await checkProduceEncoder(t),
    await checkFetchDecoder(t),
    {
      name: 'producer-grouping',
      ok: state?.groupingEffective ?? false,
      requiredFor: 'none',
      detail: state?.groupingDetail ?? 'not applied',
    },
    {
      name: 'admin-topic-offsets',
      ok: admin,
      requiredFor: 'none',
      detail: admin ? 'admin.fetchTopicOffsets retries the metadata race, then throws a retriable KafkaMetadataRaceError' : 'not applied: the race surfaces as a TypeError',
    },
  ];
  return { ok: checks.every((c) => c.ok), kafkajsDir: t.dir, kafkajsVersion: t.version, applied: state !== undefined, checks };
}

/**
 * Throws {@link KafkajsFixMissingError} when `processingGuarantee` is exactly-once and a check that
 * exactly-once requires (read_committed) failed in `report`.
 */
export function refuseWithoutFixes(processingGuarantee: string, report: KafkajsFixReport): void {
  const missing = report.checks.filter((c) => !c.ok && c.requiredFor === 'exactly-once');
  if (processingGuarantee !== 'exactly-once' || missing.length === 0) return;
  throw new KafkajsFixMissingError(
    `Refusing to run exactly-once on kafkajs ${report.kafkajsVersion} (${report.kafkajsDir}): ` +
      missing.map((c) => `${c.name}: ${c.detail}`).join('; ') +
      (kafkajsFixesDisabled()
        ? '. The fixes are disabled by VLTAVA_KAFKAJS_FIXES=off.'
        : '. Vltava supports kafkajs 2.2.4 with the fixes @vltava/runtime applies to it (docs/kafkajs-notes.md).'),
    report,
  );
}

/**
 * Applies the fixes to the runtime's kafkajs, checks them in-process (10–25 ms cold, no broker)
 * and, under exactly-once, throws {@link KafkajsFixMissingError} when the read_committed fix is not
 * in effect. Returns the report (a failed optional check is worth a warning). `KafkaStreams.start()`
 * calls it first: `await requireKafkajsFixes(this.config.processingGuarantee);`
 */
export async function requireKafkajsFixes(processingGuarantee: string, opts: KafkajsFixOptions = {}): Promise<KafkajsFixReport> {
  applyKafkajsFixes(opts);
  const report = await checkKafkajsFixes(opts);
  refuseWithoutFixes(processingGuarantee, report);
  return report;
}

applyKafkajsFixes();
