/**
 * The bad-input run: malformed and poison records mixed into valid traffic, against a real broker.
 *
 * Every bad record has a deterministic id: a `client-ref` header `bad-<n>` (`abort-<n>` inside
 * aborted transactions) and, where it is a JSON command, the command id `bad-cmd-<n>`. Each must be
 * accounted for exactly once, where its kind says:
 * - `rejection`: one record in the rejections topic with its ref and a code of the expected kind;
 * - `journal`: a well-formed command that is legal (a null header value does not make it bad
 *   input for the ledger): one journal entry with its command id;
 * - `dlq`: its rejection would be refused by the broker (too large for the rejections topic, or a
 *   timestamp out of its range), so the runtime's productionExceptionHandler writes its description
 *   (key = the command id, no value) to the dead-letter topic instead, in the same transaction;
 * - `never`: written in a transaction that was aborted: it must not be seen anywhere.
 * Nothing else may be in the dead-letter topic. The valid traffic must stay exact (the reference
 * model, read back with kcat), the app must stay up (no ERROR, no error event), and no partition
 * may go without progress while it has input for longer than the session timeout (StallMonitor).
 *
 * Poison kinds of issue 12 beyond the nine malformed kinds: null header values, keys of hundreds of
 * KB, headers near the rejections topic's size limit (the rejection carries the input's headers),
 * int32 keys of 0 (four zero bytes) in committed transactions and in aborted ones, and commands
 * whose rejection the broker would refuse (over the rejections topic's max.message.bytes, or a
 * timestamp past its message.timestamp.after.max.ms). The topics' limits are set for the run
 * (`fuzzTopicConfigs`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_COMMAND_BYTES, Workload, createLedgerApp, referenceModel, type Command, type LedgerReport, type LedgerTopics, type RejectionCode } from '@vltava/example-ledger';
import { defaultPartition } from '@vltava/dsl';
import { awaitCaughtUp, readCommitted } from '@vltava/kafka-local/testing';
import type { Kafka, Message, Producer } from 'kafkajs';
import { readCommittedWithKcat } from './kcatReader.js';
import { commandProducer, fmt, verifyOnBroker } from './ledgerIo.js';
import { StallMonitor, type StallReport } from './stallMonitor.js';

export const OLD_KINDS = ['random-bytes', 'wrong-schema', 'missing-field', 'negative-amount', 'huge', 'null-key', 'wrong-key', 'null-value', 'unknown-account'] as const;
export const NEW_KINDS = ['null-header', 'huge-key', 'big-headers', 'int32-zero-key', 'aborted-txn', 'output-too-large', 'output-timestamp'] as const;
export const ALL_KINDS: readonly BadKind[] = [...OLD_KINDS, ...NEW_KINDS];
export type BadKind = (typeof OLD_KINDS)[number] | (typeof NEW_KINDS)[number];

export type Expectation =
  | { readonly via: 'rejection'; readonly codes: readonly RejectionCode[] }
  | { readonly via: 'journal' }
  | { readonly via: 'dlq' }
  | { readonly via: 'never' };

/** Which producer sends it: the ordered stream of valid traffic, the big-record producer, or the transactional one. */
type Lane = 'main' | 'bulk' | 'txn';

interface FuzzRecord {
  readonly key: Buffer | string | null;
  readonly value: Buffer | null;
  readonly headers?: Readonly<Record<string, string | null>>;
  readonly timestamp?: number;
}

export interface BadRecord {
  readonly n: number;
  readonly ref: string;
  readonly kind: BadKind;
  readonly expect: Expectation;
  /** The command id it carries, when it has one (journal and dead-letter accounting). */
  readonly commandId?: string;
  /** Set when the record is a well-formed command (the reference model sees it). */
  readonly command?: Command;
  readonly lane: Lane;
  /** About how many bytes it is on the wire (for chunking). */
  readonly bytes: number;
  /** The record's bytes, built when sent (the big kinds would not fit in memory all at once). */
  build(): FuzzRecord;
}

/** Topic limits of the run: what the generator sizes its records against, and what the topics are created with. */
export interface FuzzLimits {
  /** max.message.bytes of the commands topic. */
  readonly commandsMaxBytes: number;
  /** max.message.bytes of the rejections topic. */
  readonly rejectionsMaxBytes: number;
  /** message.timestamp.after.max.ms of the rejections topic. */
  readonly rejectionsAfterMaxMs: number;
  /** Key sizes of `huge-key`. */
  readonly hugeKeyBytes: readonly [number, number];
  /** Largest value of `huge` (above MAX_COMMAND_BYTES). */
  readonly hugeValueMaxBytes: number;
}

export const DEFAULT_LIMITS: FuzzLimits = {
  commandsMaxBytes: 262_144,
  rejectionsMaxBytes: 65_536,
  rejectionsAfterMaxMs: 3_600_000,
  hugeKeyBytes: [100_000, 200_000],
  hugeValueMaxBytes: 48_000,
};

/** Topic configs for the run: the commands topic takes any timestamp; the rejections topic has the small limits. */
export function fuzzTopicConfigs(l: FuzzLimits = DEFAULT_LIMITS): { commands: Record<string, string>; rejections: Record<string, string> } {
  return {
    commands: { 'max.message.bytes': String(l.commandsMaxBytes), 'message.timestamp.after.max.ms': '9223372036854775807' },
    rejections: { 'max.message.bytes': String(l.rejectionsMaxBytes), 'message.timestamp.after.max.ms': String(l.rejectionsAfterMaxMs) },
  };
}

export interface FuzzOptions {
  readonly kafka: Kafka;
  readonly brokers: readonly string[];
  /** Created by the caller, commands and rejections with `fuzzTopicConfigs(limits)`. */
  readonly topics: LedgerTopics;
  readonly deadLetterTopic: string;
  readonly applicationId: string;
  readonly partitions: number;
  readonly valid?: number;
  /** Bad records of each kind (at least 1). */
  readonly perKind?: number;
  /** Overrides of `perKind` for some kinds. */
  readonly counts?: Partial<Record<BadKind, number>>;
  /** Only these kinds (default: all); for isolating a kind that fails. */
  readonly kinds?: readonly BadKind[];
  readonly seed?: number;
  readonly limits?: FuzzLimits;
  readonly sessionTimeoutMs?: number;
  /** How long the app may take to catch up after the last record was sent (default 120 s). */
  readonly catchUpMs?: number;
  /** Progress lines (the CLI prints them). */
  readonly progress?: (line: string) => void;
}

export interface KindFigures {
  sent: number;
  accounted: number;
  viaRejection: number;
  viaJournal: number;
  viaDlq: number;
  neverSeen: number;
  unaccounted: number;
  duplicated: number;
  misrouted: number;
  bytes: number;
}

export interface FuzzReport {
  readonly seed: number;
  readonly partitions: number;
  readonly limits: FuzzLimits;
  readonly sessionTimeoutMs: number;
  readonly validSent: number;
  readonly badSent: number;
  readonly badByKind: Readonly<Record<string, number>>;
  readonly byKind: Readonly<Record<string, KindFigures>>;
  readonly accounted: number;
  readonly unaccounted: number;
  readonly deadLettered: number;
  readonly dlqUnexpected: number;
  readonly droppedEvents: Readonly<Record<string, number>>;
  readonly transactions: { readonly committed: number; readonly aborted: number };
  readonly stall: StallReport;
  readonly appStates: readonly string[];
  readonly appErrors: readonly string[];
  readonly appLog: readonly string[];
  readonly ledger: LedgerReport;
  readonly reader: string;
  readonly readerDiffs: readonly string[];
  readonly bytesSent: number;
  readonly sendMs: number;
  readonly catchUpMs: number;
  readonly totalMs: number;
  readonly violations: readonly string[];
  readonly ok: boolean;
  /** Kept for the old callers: bad records accounted for exactly once. */
  readonly rejectionsMatched: number;
}

const json = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
/** The guard's size of a record in a batch of its own (productionGuard.recordBatchBytes). */
const headerBytes = (h: Readonly<Record<string, string | null>>): number => Object.entries(h).reduce((s, [k, v]) => s + Buffer.byteLength(k) + (v === null ? 0 : Buffer.byteLength(v)) + 10, 0);
/** An upper bound of the size of a ledger rejection value (reason, ids, input position) without headers. */
const REJECTION_VALUE_MAX = 420;

export function badRecord(w: Workload, n: number, kind: BadKind, limits: FuzzLimits = DEFAULT_LIMITS): BadRecord {
  const ref = `bad-${n}`;
  const id = `bad-cmd-${n}`;
  const acc = `acc-${w.int(20)}`;
  const headers = { 'client-ref': ref };
  const fixed = (rec: FuzzRecord, expect: Expectation, extra: { command?: Command; commandId?: string; lane?: Lane } = {}): BadRecord => ({
    n,
    ref,
    kind,
    expect,
    lane: extra.lane ?? 'main',
    bytes: (rec.key?.length ?? 0) + (rec.value?.length ?? 0) + (rec.headers ? headerBytes(rec.headers) : 0) + 70,
    build: () => rec,
    ...(extra.command ? { command: extra.command, commandId: extra.command.id } : {}),
    ...(extra.commandId ? { commandId: extra.commandId } : {}),
  });
  /** A deposit sent with a key that is not its account: rejected as key-mismatch, keyed by its id. */
  const misKeyed = { type: 'deposit', id, account: acc, amount: 5 };
  switch (kind) {
    case 'random-bytes': {
      const bytes = Buffer.from(Array.from({ length: 1 + w.int(300) }, () => w.int(256)));
      return fixed({ key: acc, value: bytes, headers }, { via: 'rejection', codes: ['malformed'] });
    }
    case 'wrong-schema': {
      const shapes: unknown[] = [[1, 2, 3], 'deposit', 42, null, { op: 'deposit', id, account: acc, amount: 5 }, { type: 'refund', id, amount: 5 }, { type: 'deposit', id: 7, account: acc, amount: 5 }, { type: 'deposit', id, account: acc, amount: '5' }, { type: 'transfer', id, from: acc, to: ['x'], amount: 1 }];
      return fixed({ key: acc, value: json(shapes[w.int(shapes.length)]), headers }, { via: 'rejection', codes: ['malformed'] });
    }
    case 'missing-field': {
      const shapes: unknown[] = [{ type: 'deposit', id, amount: 5 }, { type: 'deposit', account: acc, amount: 5 }, { type: 'transfer', id, from: acc, amount: 5 }, { type: 'transfer', id, from: acc, to: 'acc-1' }, { id, account: acc, amount: 5 }, {}];
      return fixed({ key: acc, value: json(shapes[w.int(shapes.length)]), headers }, { via: 'rejection', codes: ['malformed'] });
    }
    case 'negative-amount': {
      const command: Command = w.int(2) === 0 ? { type: 'deposit', id, account: acc, amount: -1 - w.int(1000) } : { type: 'transfer', id, from: acc, to: 'acc-3', amount: -1 - w.int(1000) };
      return fixed({ key: acc, value: json(command), headers }, { via: 'rejection', codes: ['invalid-amount'] }, { command });
    }
    case 'unknown-account': {
      const command: Command = { type: 'transfer', id, from: acc, to: `ghost-${n}`, amount: 1 };
      return fixed({ key: acc, value: json(command), headers }, { via: 'rejection', codes: ['unknown-account'] }, { command });
    }
    case 'huge': {
      // Above the ledger's 16 KiB command limit, below the commands topic's limit.
      const size = MAX_COMMAND_BYTES + 1 + w.int(Math.max(1, Math.min(limits.hugeValueMaxBytes, limits.commandsMaxBytes - 4_096) - MAX_COMMAND_BYTES));
      return {
        n, ref, kind, lane: 'bulk', bytes: size + 200, expect: { via: 'rejection', codes: ['too-large'] },
        build: () => ({ key: acc, value: json({ type: 'deposit', id, account: acc, amount: 5, memo: 'x'.repeat(size) }), headers }),
      };
    }
    case 'null-key':
      return fixed({ key: null, value: json({ type: 'deposit', id, account: acc, amount: 5 }), headers }, { via: 'rejection', codes: ['missing-key'] });
    case 'wrong-key':
      return fixed({ key: `acc-${1000 + n}`, value: json(misKeyed), headers }, { via: 'rejection', codes: ['key-mismatch'] });
    case 'null-value':
      return fixed({ key: acc, value: null, headers }, { via: 'rejection', codes: ['malformed'] });
    case 'null-header': {
      // Legal Kafka: header values may be null. Half are mis-keyed (the rejection carries the input's
      // headers, null value included, to the rejections topic), half are legal deposits (journal).
      const h = { 'client-ref': ref, 'x-null': null, 'x-empty': '' };
      if (n % 2 === 0) return fixed({ key: `acc-${1000 + n}`, value: json(misKeyed), headers: h }, { via: 'rejection', codes: ['key-mismatch'] }, { commandId: id });
      const command: Command = { type: 'deposit', id, account: acc, amount: 1 + w.int(50) };
      return fixed({ key: acc, value: json(command), headers: h }, { via: 'journal' }, { command });
    }
    case 'huge-key': {
      const [lo, hi] = limits.hugeKeyBytes;
      const size = Math.min(lo + w.int(Math.max(1, hi - lo)), limits.commandsMaxBytes - 2_048);
      return {
        n, ref, kind, lane: 'bulk', bytes: size + 200, commandId: id, expect: { via: 'rejection', codes: ['key-mismatch'] },
        build: () => ({ key: `K${n}-`.padEnd(size, 'k'), value: json(misKeyed), headers }),
      };
    }
    case 'big-headers': {
      // The rejection (input headers + its value) lands just under the rejections topic's limit.
      const gap = 600 + w.int(3_500);
      const pad = Math.max(1, limits.rejectionsMaxBytes - gap - REJECTION_VALUE_MAX - 82 - 20 - headerBytes({ 'client-ref': ref, 'x-pad': '' }));
      return {
        n, ref, kind, lane: 'bulk', bytes: pad + 300, commandId: id, expect: { via: 'rejection', codes: ['key-mismatch'] },
        build: () => ({ key: `acc-${1000 + n}`, value: json(misKeyed), headers: { 'client-ref': ref, 'x-pad': 'h'.repeat(pad) } }),
      };
    }
    case 'output-too-large': {
      // Fits the commands topic; its rejection does not fit the rejections topic.
      const room = Math.max(2, Math.min(16_384, limits.commandsMaxBytes - limits.rejectionsMaxBytes - 8_192));
      const pad = limits.rejectionsMaxBytes + 1_024 + w.int(room);
      return {
        n, ref, kind, lane: 'bulk', bytes: pad + 300, commandId: id, expect: { via: 'dlq' },
        build: () => ({ key: `acc-${1000 + n}`, value: json(misKeyed), headers: { 'client-ref': ref, 'x-pad': 'o'.repeat(pad) } }),
      };
    }
    case 'output-timestamp': {
      // Accepted by the commands topic (any timestamp), past the rejections topic's bound: its
      // rejection, stamped with the input's timestamp, is refused there.
      const ahead = limits.rejectionsAfterMaxMs + 600_000 + w.int(48 * 3_600_000);
      const rec = { key: `acc-${1000 + n}`, value: json(misKeyed), headers };
      return { ...fixed(rec, { via: 'dlq' }, { commandId: id }), build: () => ({ ...rec, timestamp: Date.now() + ahead }) };
    }
    case 'int32-zero-key':
      // What Serdes.int32() writes for 0; sent in committed transactions (the txn lane).
      return fixed({ key: Buffer.alloc(4), value: json(misKeyed), headers }, { via: 'rejection', codes: ['key-mismatch'] }, { commandId: id, lane: 'txn' });
    case 'aborted-txn': {
      // In an aborted transaction: int32(0) keys (which kafkajs once took for abort markers) and
      // legal deposits (a leak would show in the journal and the balances).
      const aref = `abort-${n}`;
      const aid = `abort-cmd-${n}`;
      const h = { 'client-ref': aref };
      const rec: FuzzRecord = n % 2 === 0 ? { key: Buffer.alloc(4), value: json({ ...misKeyed, id: aid }), headers: h } : { key: acc, value: json({ type: 'deposit', id: aid, account: acc, amount: 7 }), headers: h };
      return { ...fixed(rec, { via: 'never' }, { commandId: aid, lane: 'txn' }), ref: aref };
    }
  }
}

interface MainItem {
  readonly rec: FuzzRecord;
  readonly command?: Command;
}

/**
 * Sends records in calls of at most `maxRecords` records and `maxBytes` bytes (so no partition's
 * batch can pass the topic's limit), each keyed record with its partition computed here (Kafka's
 * murmur2, as kafkajs' default partitioner would choose it): kafkajs' own murmur2 is quadratic in
 * the key length, and on a 150 KB key it would block this process — the app's too — for seconds.
 */
async function sendSized(producer: Pick<Producer, 'send'>, topic: string, partitions: number, recs: Iterable<FuzzRecord>, maxBytes: number, maxRecords = 500, onSent?: (n: number, bytes: number) => void): Promise<void> {
  let batch: Message[] = [];
  let bytes = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    await producer.send({ topic, messages: batch });
    onSent?.(batch.length, bytes);
    batch = [];
    bytes = 0;
  };
  for (const r of recs) {
    const size = (r.key?.length ?? 0) + (r.value?.length ?? 0) + (r.headers ? headerBytes(r.headers) : 0) + 70;
    if (batch.length > 0 && (bytes + size > maxBytes || batch.length >= maxRecords)) await flush();
    // kafkajs' types say header values are strings; null is legal Kafka and the runtime's kafkajs fix encodes it.
    const partition = r.key === null ? undefined : defaultPartition(typeof r.key === 'string' ? Buffer.from(r.key) : r.key, partitions);
    batch.push({ key: r.key, value: r.value, ...(partition === undefined ? {} : { partition }), ...(r.headers ? { headers: r.headers as Message['headers'] } : {}), ...(r.timestamp === undefined ? {} : { timestamp: String(r.timestamp) }) });
    bytes += size;
  }
  await flush();
}

export interface FuzzPlan {
  readonly main: readonly MainItem[];
  readonly bads: readonly BadRecord[];
  readonly bulk: readonly BadRecord[];
  readonly txns: readonly { readonly abort: boolean; readonly records: readonly BadRecord[] }[];
}

export type PlanOptions = Pick<FuzzOptions, 'seed' | 'valid' | 'perKind' | 'counts' | 'kinds' | 'limits'>;

/** The records of a run, deterministic in the options (the producer worker and the verifier each build it). */
export function planFuzz(opts: PlanOptions): FuzzPlan {
  const seed = opts.seed ?? 11;
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const w = new Workload({ seed, accounts: 20 });
  const validN = opts.valid ?? 3_000;
  const perKind = Math.max(1, opts.perKind ?? 20);

  // The plan: valid traffic with the small bad records at random places (one ordered stream, as
  // the reference model needs); the big ones on a producer of their own; int32(0) keys in
  // transactions, committed or aborted, on a transactional producer. All three at once.
  const main: MainItem[] = w.batch(validN).map((r) => ({ rec: { key: r.key, value: r.value }, command: r.command }));
  const bads: BadRecord[] = [];
  let n = 0;
  for (const kind of opts.kinds ?? ALL_KINDS) {
    const count = Math.max(1, opts.counts?.[kind] ?? perKind);
    for (let i = 0; i < count; i++) bads.push(badRecord(w, n++, kind, limits));
  }
  // Shuffled so that kinds interleave within each lane.
  for (let i = bads.length - 1; i > 0; i--) {
    const j = w.int(i + 1);
    [bads[i], bads[j]] = [bads[j]!, bads[i]!];
  }
  for (const b of bads.filter((x) => x.lane === 'main')) {
    main.splice(w.int(main.length + 1), 0, { rec: b.build(), ...(b.command ? { command: b.command } : {}) });
  }
  const bulk = bads.filter((b) => b.lane === 'bulk');
  // Transactions of up to 25 records: int32(0) keys committed, aborted-txn records aborted; the last one aborts.
  const committedTx = bads.filter((b) => b.kind === 'int32-zero-key');
  const abortedTx = bads.filter((b) => b.kind === 'aborted-txn');
  const txns: { abort: boolean; records: BadRecord[] }[] = [];
  for (let i = 0; i < committedTx.length; i += 25) txns.push({ abort: false, records: committedTx.slice(i, i + 25) });
  const aborts: { abort: boolean; records: BadRecord[] }[] = [];
  for (let i = 0; i < abortedTx.length; i += 25) aborts.push({ abort: true, records: abortedTx.slice(i, i + 25) });
  const last = aborts.pop();
  for (const a of aborts) txns.splice(w.int(txns.length + 1), 0, a);
  if (last) txns.push(last);

  return { main, bads, bulk, txns };
}

export type ProducerMessage = { type: 'ready' } | { type: 'sent'; records: number; bytes: number } | { type: 'done'; committed: number; aborted: number } | { type: 'error'; message: string };

export interface SendTarget {
  readonly commands: string;
  readonly partitions: number;
  readonly applicationId: string;
}

/**
 * Sends the plan: the ordered main lane on one idempotent producer, the big records on three, the
 * transactions on a transactional producer, all at once.
 */
export async function sendPlan(kafka: Kafka, plan: FuzzPlan, target: SendTarget, limits: FuzzLimits, post: (m: ProducerMessage) => void): Promise<void> {
  const opts = { kafka, topics: { commands: target.commands }, partitions: target.partitions, applicationId: target.applicationId };
  const { main, bulk, txns } = plan;
  const tally = (records: number, bytes: number): void => post({ type: 'sent', records, bytes });
  const txStats = { committed: 0, aborted: 0 };
  const mainP = (async () => {
    const p = await commandProducer(opts.kafka);
    try {
      await sendSized(p, opts.topics.commands, opts.partitions, main.map((m) => m.rec), Math.min(200_000, limits.commandsMaxBytes / 2), 500, tally);
    } finally {
      await p.disconnect();
    }
  })();
  // The big records on three producers at once (none of them is in the reference model: order does not matter).
  const bulkP = [0, 1, 2].map(async (lane) => {
    const p = await commandProducer(opts.kafka);
    try {
      // Each call well under the commands topic's limit: a partition's batch can never pass it.
      await sendSized(p, opts.topics.commands, opts.partitions, (function* () { for (let i = lane; i < bulk.length; i += 3) yield bulk[i]!.build(); })(), limits.commandsMaxBytes - 8_192, 100, tally);
    } finally {
      await p.disconnect();
    }
  });
  const txnP = (async () => {
    const p = opts.kafka.producer({ transactionalId: `${opts.applicationId}-bad-input`, idempotent: true, maxInFlightRequests: 1 });
    await p.connect();
    try {
      for (const t of txns) {
        const tx = await p.transaction();
        try {
          await sendSized(tx, opts.topics.commands, opts.partitions, t.records.map((b) => b.build()), 200_000, 500, t.abort ? undefined : tally);
        } catch (e) {
          await tx.abort().catch(() => undefined);
          throw e;
        }
        if (t.abort) {
          await tx.abort();
          txStats.aborted++;
        } else {
          await tx.commit();
          txStats.committed++;
        }
      }
    } finally {
      await p.disconnect();
    }
  })();
  await Promise.all([mainP, ...bulkP, txnP]);
  post({ type: 'done', ...txStats });
}

/**
 * Runs sendPlan in a worker thread: the producers' work (kafkajs encodes and checksums in JS) must
 * not hold up the app's event loop. Resolves `ready` once the worker has planned; `go()` starts the
 * sending, `done` settles when it is over.
 */
function producerWorker(opts: FuzzOptions, onMessage: (m: ProducerMessage) => void): { ready: Promise<void>; go: () => void; done: Promise<void>; stop: () => Promise<number> } {
  const workerData: FuzzWorkerData = {
    brokers: [...opts.brokers],
    target: { commands: opts.topics.commands, partitions: opts.partitions, applicationId: opts.applicationId },
    plan: { seed: opts.seed, valid: opts.valid, perKind: opts.perKind, counts: opts.counts, kinds: opts.kinds, limits: opts.limits },
  };
  const worker = new Worker(new URL('./fuzzProducer.js', import.meta.url), { workerData });
  let failed: Error | undefined;
  let onReady!: () => void;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const done = new Promise<void>((resolve, reject) => {
    worker.on('message', (m: ProducerMessage) => {
      if (m.type === 'error') failed = new Error(`the producer worker failed: ${m.message}`);
      else if (m.type === 'ready') onReady();
      else onMessage(m);
    });
    worker.on('error', (e) => (failed = e));
    worker.on('exit', (code) => {
      onReady();
      if (failed !== undefined) reject(failed);
      else if (code === 0) resolve();
      else reject(new Error(`the producer worker exited with ${code}`));
    });
  });
  done.catch(() => undefined);
  return { ready, go: () => worker.postMessage('go'), done, stop: () => worker.terminate() };
}

export interface FuzzWorkerData {
  readonly brokers: string[];
  readonly target: SendTarget;
  readonly plan: PlanOptions;
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const t0 = Date.now();
  const seed = opts.seed ?? 11;
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const sessionTimeoutMs = opts.sessionTimeoutMs ?? 6_000;
  const log = opts.progress ?? (() => undefined);
  const validN = opts.valid ?? 3_000;
  const { main, bads } = planFuzz(opts);

  const stateDir = mkdtempSync(join(tmpdir(), 'vltava-fuzz-'));
  const appLog: string[] = [];
  const keep = (level: string) => (msg: string, meta?: unknown) => {
    if (appLog.length < 2_000) appLog.push(`${new Date().toISOString()} ${level} ${msg}${meta === undefined ? '' : ` ${JSON.stringify(meta)}`}`.slice(0, 2_000));
  };
  const app = createLedgerApp({
    applicationId: opts.applicationId,
    brokers: opts.brokers,
    partitions: opts.partitions,
    topics: opts.topics,
    stateDir,
    sessionTimeoutMs,
    heartbeatIntervalMs: Math.min(1_000, Math.floor(sessionTimeoutMs / 3)),
    processingExceptionHandler: { deadLetterTopic: opts.deadLetterTopic },
    deserializationExceptionHandler: { deadLetterTopic: opts.deadLetterTopic },
    productionExceptionHandler: { deadLetterTopic: opts.deadLetterTopic },
    logger: { info: () => undefined, warn: keep('WARN'), error: keep('ERROR') },
  });
  const states: string[] = [];
  const errors: string[] = [];
  const dropped: Record<string, number> = {};
  let processed = 0;
  app.on('app.state', ({ to }) => states.push(to));
  app.on('error', ({ error }) => {
    errors.push(error.message);
    keep('ERROR-EVENT')(error.message);
  });
  app.on('task.record.dropped', (e) => {
    const r = (e as { reason?: string }).reason ?? 'unknown';
    dropped[r] = (dropped[r] ?? 0) + 1;
  });
  app.on('task.processed', ({ records }) => (processed += records));
  const admin = opts.kafka.admin();
  await admin.connect();
  const monitor = new StallMonitor(admin, opts.applicationId, [opts.topics.commands, `${opts.applicationId}-credits-repartition`], { intervalMs: 250, reportOverMs: 1_000 });
  let sent = 0;
  let bytesSent = 0;
  let sendMs = 0;
  let catchUpMs = 0;
  const tally = (k: number, b: number): void => {
    sent += k;
    bytesSent += b;
  };
  const ticker = setInterval(() => log(`sent ${fmt(sent)} records (${(bytesSent / 1e6).toFixed(0)} MB), processed ${fmt(processed)}, longest stall so far ${monitor.longestSoFar()} ms, app ${app.state}`), 10_000);
  const txStats = { committed: 0, aborted: 0 };
  const producers = producerWorker(opts, (m) => {
    if (m.type === 'sent') tally(m.records, m.bytes);
    else if (m.type === 'done') {
      txStats.committed = m.committed;
      txStats.aborted = m.aborted;
    }
  });
  try {
    await producers.ready;
    await app.start();
    monitor.start();
    const tSend = Date.now();
    producers.go();
    await producers.done;
    sendMs = Date.now() - tSend;
    log(`all sent in ${(sendMs / 1000).toFixed(1)} s; waiting for the app to catch up`);
    const tCatch = Date.now();
    await awaitCaughtUp(admin, opts.applicationId, opts.topics.commands, opts.catchUpMs ?? 120_000);
    await awaitCaughtUp(admin, opts.applicationId, `${opts.applicationId}-credits-repartition`, opts.catchUpMs ?? 120_000);
    catchUpMs = Date.now() - tCatch;
  } catch (e) {
    clearInterval(ticker);
    await producers.stop();
    const s = await monitor.stop();
    await admin.disconnect().catch(() => undefined);
    await app.close();
    rmSync(stateDir, { recursive: true, force: true });
    const err = e as Error;
    const failedCommits = new Map<string, number>();
    for (const l of appLog) {
      const m = /commit of task (\S+) failed/.exec(l);
      if (m) failedCommits.set(m[1]!, (failedCommits.get(m[1]!) ?? 0) + 1);
    }
    const distinct = [...new Set(errors)];
    err.message = `${err.message}\n  app: ${states.length} state changes (${states.filter((x) => x === 'REBALANCING').length} rebalances, ERROR ${states.includes('ERROR') ? 'reached' : 'never reached'}), final ${app.state}; ${errors.length} error events (${distinct.length} distinct: ${distinct.slice(0, 3).join(' | ')}); failed commits logged per task (first ${appLog.length} log lines): ${JSON.stringify(Object.fromEntries(failedCommits))}\n  app state ${states.slice(0, 12).join(' > ')}${states.length > 12 ? ' ...' : ''}\n  longest stall ${JSON.stringify(s.longest)}\n  last app log lines:\n    ${appLog.slice(-15).join('\n    ')}`;
    throw err;
  }
  clearInterval(ticker);
  const stall = await monitor.stop();
  await admin.disconnect();
  const stateAtEnd = app.state;
  await app.close();
  rmSync(stateDir, { recursive: true, force: true });

  log('verifying: the ledger outputs and the dead-letter topic read back read_committed with kcat (and kafkajs)');
  const ref = referenceModel(main.filter((i) => i.command !== undefined).map((i) => i.command!));
  const brokerList = opts.brokers.join(',');
  const { report: ledger, outputs, reader, readerDiffs } = await verifyOnBroker(opts.kafka, opts.topics, ref, { brokers: brokerList, timeoutMs: 300_000 });
  const dlq = await readCommittedWithKcat(brokerList, opts.deadLetterTopic, { timeoutMs: 300_000 });
  const dlqKafkajs = await readCommitted(opts.kafka, opts.deadLetterTopic, { timeoutMs: 300_000 });
  const violations = [...ledger.violations, ...readerDiffs];
  if (dlqKafkajs.length !== dlq.length) violations.push(`dead-letter topic: kcat read ${dlq.length} records, kafkajs ${dlqKafkajs.length}`);

  // Where each id was seen.
  const rejByRef = new Map<string, RejectionCode[]>();
  for (const { value } of outputs.rejections) if (value.ref !== undefined) rejByRef.set(value.ref, [...(rejByRef.get(value.ref) ?? []), value.code]);
  const journalById = new Map<string, number>();
  for (const { value } of outputs.journal) if (value.side !== 'credit') journalById.set(value.commandId, (journalById.get(value.commandId) ?? 0) + 1);
  const dlqByKey = new Map<string, number>();
  let dlqWithValue = 0;
  for (const r of dlq) {
    const k = r.key?.toString() ?? '<null key>';
    dlqByKey.set(k, (dlqByKey.get(k) ?? 0) + 1);
    if (r.value !== null) dlqWithValue++;
  }
  if (dlqWithValue > 0) violations.push(`${dlqWithValue} dead-letter record(s) carry a value: the ledger never throws nor fails to deserialize, only production-handler records (no value) are expected`);

  const byKind: Record<string, KindFigures> = {};
  const claimedDlq = new Set<string>();
  let accounted = 0;
  for (const b of bads) {
    const f = (byKind[b.kind] ??= { sent: 0, accounted: 0, viaRejection: 0, viaJournal: 0, viaDlq: 0, neverSeen: 0, unaccounted: 0, duplicated: 0, misrouted: 0, bytes: 0 });
    f.sent++;
    f.bytes += b.bytes;
    const codes = rejByRef.get(b.ref) ?? [];
    const inJournal = b.commandId === undefined ? 0 : (journalById.get(b.commandId) ?? 0);
    const inDlq = b.commandId === undefined ? 0 : (dlqByKey.get(b.commandId) ?? 0);
    if (inDlq > 0) claimedDlq.add(b.commandId!);
    const seen = codes.length + inJournal + inDlq;
    const where = `rejections ${codes.length}${codes.length ? ` (${codes.join(',')})` : ''}, journal ${inJournal}, dead-letter ${inDlq}`;
    const e = b.expect;
    let ok: boolean;
    if (e.via === 'never') ok = seen === 0;
    else if (e.via === 'rejection') ok = seen === 1 && codes.length === 1 && e.codes.includes(codes[0]!);
    else if (e.via === 'journal') ok = seen === 1 && inJournal === 1;
    else ok = seen === 1 && inDlq === 1;
    if (ok) {
      accounted++;
      f.accounted++;
      if (e.via === 'never') f.neverSeen++;
      else if (e.via === 'rejection') f.viaRejection++;
      else if (e.via === 'journal') f.viaJournal++;
      else f.viaDlq++;
    } else {
      if (seen === 0) f.unaccounted++;
      else if (seen > 1 && e.via !== 'never') f.duplicated++;
      else f.misrouted++;
      violations.push(`${b.ref} (${b.kind}): seen in ${where}; expected ${e.via === 'never' ? 'nowhere (aborted)' : e.via === 'rejection' ? `once, as a rejection ${e.codes.join(' or ')}` : `once, in the ${e.via === 'dlq' ? 'dead-letter topic' : e.via}`}`);
    }
  }
  const dlqUnexpected = [...dlqByKey].filter(([k]) => !claimedDlq.has(k)).reduce((s, [, c]) => s + c, 0);
  if (dlqUnexpected > 0) violations.push(`${dlqUnexpected} dead-letter record(s) of no bad record: ${[...dlqByKey.keys()].filter((k) => !claimedDlq.has(k)).slice(0, 5).join(', ')}`);
  if (stateAtEnd !== 'RUNNING') violations.push(`the app was ${stateAtEnd} at the end, not RUNNING`);
  if (states.includes('ERROR')) violations.push('the app went to ERROR');
  if (errors.length > 0) violations.push(`error events: ${errors.slice(0, 3).join(' | ')}`);
  // Stalls once a partition is under way; the wait for its first commit (the app's start-up) is reported apart.
  if (stall.longestSteady !== undefined && stall.longestSteady.ms >= sessionTimeoutMs) {
    const s = stall.longestSteady;
    violations.push(`${s.topic}-${s.partition} went ${s.ms} ms without progress while it had input (committed ${s.committed}, end ${s.end}${s.open ? ', still stalled at the end' : ''}): not below the session timeout (${sessionTimeoutMs} ms)`);
  }
  const badByKind: Record<string, number> = {};
  for (const b of bads) badByKind[b.kind] = (badByKind[b.kind] ?? 0) + 1;
  return {
    seed,
    partitions: opts.partitions,
    limits,
    sessionTimeoutMs,
    validSent: validN,
    badSent: bads.length,
    badByKind,
    byKind,
    accounted,
    unaccounted: bads.length - accounted,
    deadLettered: dlq.length,
    dlqUnexpected,
    droppedEvents: dropped,
    transactions: txStats,
    stall,
    appStates: states,
    appErrors: errors,
    appLog,
    ledger,
    reader,
    readerDiffs,
    bytesSent,
    sendMs,
    catchUpMs,
    totalMs: Date.now() - t0,
    violations: violations.slice(0, 40),
    ok: violations.length === 0,
    rejectionsMatched: accounted,
  };
}

/** The report as markdown (docs/chaos-report.md's "Bad-input run" section). */
export function formatFuzzReport(r: FuzzReport, command: string): string {
  const l = r.limits;
  const lines: string[] = [];
  lines.push(`Command: \`${command}\` (seed ${r.seed}, ${r.partitions} partitions, session timeout ${fmt(r.sessionTimeoutMs)} ms, all three exception handlers \`{ deadLetterTopic }\`).`);
  lines.push(`Topics: commands \`max.message.bytes=${fmt(l.commandsMaxBytes)}\`, any timestamp; rejections \`max.message.bytes=${fmt(l.rejectionsMaxBytes)}\`, \`message.timestamp.after.max.ms=${fmt(l.rejectionsAfterMaxMs)}\`.`);
  lines.push('');
  lines.push('| | |');
  lines.push('| --- | --- |');
  lines.push(`| result | **${r.ok ? 'PASS' : 'FAIL'}** |`);
  lines.push(`| duration | ${(r.totalMs / 1000).toFixed(0)} s (sending ${(r.sendMs / 1000).toFixed(0)} s, catching up after the last send ${(r.catchUpMs / 1000).toFixed(1)} s) |`);
  lines.push(`| records sent | ${fmt(r.validSent)} valid commands + ${fmt(r.badSent)} bad records of ${Object.keys(r.badByKind).length} kinds, ${(r.bytesSent / 1e6).toFixed(0)} MB committed (${fmt(r.transactions.committed)} committed and ${fmt(r.transactions.aborted)} aborted transactions of the bad-input producer) |`);
  lines.push(`| valid traffic (kcat, read_committed) | ${fmt(r.ledger.acceptedIds)} accepted, ${fmt(r.ledger.rejectedIds)} rejected by the rules, ${fmt(r.ledger.journalEntries)} journal entries; lost / duplicated ${r.ledger.lost.length} / ${r.ledger.duplicated.length}; kafkajs and kcat readings ${r.readerDiffs.length === 0 ? 'identical' : `differ (${r.readerDiffs.length})`} |`);
  lines.push(`| bad records accounted for exactly once | ${fmt(r.accounted)} of ${fmt(r.badSent)} (unaccounted ${fmt(r.unaccounted)}) |`);
  lines.push(`| dead-letter topic (kcat) | ${fmt(r.deadLettered)} records, ${fmt(r.dlqUnexpected)} of no bad record |`);
  const where = (x: { topic: string; partition: number; ms: number; since: number }): string => `${fmt(x.ms)} ms on ${x.topic.endsWith('-repartition') ? 'the credits repartition topic' : 'commands'} p${x.partition}, from +${((x.since - r.stall.startedAt) / 1000).toFixed(1)} s`;
  const s = r.stall.longestSteady;
  lines.push(`| longest stall (a partition with input whose committed offset does not move) | ${s === undefined ? 'none over one sample' : where(s)} (limit: the session timeout, ${fmt(r.sessionTimeoutMs)} ms; ${fmt(r.stall.samples)} samples of the group's committed offsets and the partitions' last stable offsets, every 250 ms) |`);
  const su = r.stall.longestStartup;
  lines.push(`| start-up (app started → a partition's first commit) | ${su === undefined ? '—' : where(su)} |`);
  lines.push(`| stalls over 1 s | ${r.stall.over.length === 0 ? 'none' : r.stall.over.slice(0, 6).map((x) => `${fmt(x.ms)} ms (${x.topic.endsWith('-repartition') ? 'repartition' : 'commands'} p${x.partition}, from +${((x.since - r.stall.startedAt) / 1000).toFixed(1)} s, at offset ${fmt(x.committed)} of ${fmt(x.end)})`).join('; ')} |`);
  lines.push(`| app | ${r.appStates.join(' → ')}; ${r.appErrors.length} error events |`);
  lines.push(`| violations | ${r.violations.length} |`);
  lines.push('');
  lines.push('| kind | sent | MB | accounted | where | unaccounted | duplicated | elsewhere |');
  lines.push('| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |');
  for (const k of ALL_KINDS) {
    const f = r.byKind[k];
    if (f === undefined) continue;
    const where = [f.viaRejection && `${fmt(f.viaRejection)} rejections`, f.viaJournal && `${fmt(f.viaJournal)} journal`, f.viaDlq && `${fmt(f.viaDlq)} dead-letter`, f.neverSeen && `${fmt(f.neverSeen)} never seen (aborted)`].filter(Boolean).join(', ');
    lines.push(`| \`${k}\` | ${fmt(f.sent)} | ${(f.bytes / 1e6).toFixed(1)} | ${fmt(f.accounted)} | ${where || '—'} | ${f.unaccounted} | ${f.duplicated} | ${f.misrouted} |`);
  }
  if (r.violations.length > 0) {
    lines.push('');
    lines.push('Violations:');
    lines.push('');
    for (const v of r.violations) lines.push(`- ${v}`);
  }
  return lines.join('\n');
}
