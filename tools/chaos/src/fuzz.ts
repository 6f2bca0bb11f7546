/**
 * The bad-input run: malformed commands mixed into valid traffic, against a real broker.
 * Bad records carry a `client-ref` header (`bad-<n>`); each must come out exactly once, in the
 * rejections (the ledger never throws on input, so its dead-letter topic must stay empty), with a
 * reason of the expected kind. The valid traffic must stay exact (the reference model check), and
 * the app must stay up: no ERROR state, no error event.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_COMMAND_BYTES, Workload, createLedgerApp, referenceModel, type Command, type LedgerReport, type LedgerTopics, type RejectionCode } from '@vltava/example-ledger';
import { awaitCaughtUp, readCommitted } from '@vltava/kafka-local/testing';
import type { Kafka } from 'kafkajs';
import { commandProducer, sendRecords, verifyOnBroker, type SendableRecord } from './ledgerIo.js';

export type BadKind = 'random-bytes' | 'wrong-schema' | 'missing-field' | 'negative-amount' | 'huge' | 'null-key' | 'wrong-key' | 'null-value' | 'unknown-account';

interface BadRecord extends SendableRecord {
  readonly ref: string;
  readonly kind: BadKind;
  readonly expect: readonly RejectionCode[];
  /** Set when the record is a well-formed command (the reference model sees it). */
  readonly command?: Command;
}

export interface FuzzOptions {
  readonly kafka: Kafka;
  readonly brokers: readonly string[];
  readonly topics: LedgerTopics;
  readonly deadLetterTopic: string;
  readonly applicationId: string;
  readonly partitions: number;
  readonly valid?: number;
  readonly bad?: number;
  readonly seed?: number;
}

export interface FuzzReport {
  readonly validSent: number;
  readonly badSent: number;
  readonly badByKind: Readonly<Record<string, number>>;
  readonly rejectionsMatched: number;
  readonly deadLettered: number;
  readonly appStates: readonly string[];
  readonly appErrors: readonly string[];
  readonly ledger: LedgerReport;
  readonly violations: readonly string[];
  readonly ok: boolean;
}

export function badRecord(w: Workload, n: number, kind: BadKind): BadRecord {
  const ref = `bad-${n}`;
  const id = `bad-cmd-${n}`;
  const acc = `acc-${w.int(20)}`;
  const json = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
  const headers = { 'client-ref': ref };
  switch (kind) {
    case 'random-bytes': {
      const bytes = Buffer.from(Array.from({ length: 1 + w.int(300) }, () => w.int(256)));
      return { ref, kind, key: acc, value: bytes, headers, expect: ['malformed'] };
    }
    case 'wrong-schema': {
      const shapes: unknown[] = [[1, 2, 3], 'deposit', 42, null, { op: 'deposit', id, account: acc, amount: 5 }, { type: 'refund', id, amount: 5 }, { type: 'deposit', id: 7, account: acc, amount: 5 }, { type: 'deposit', id, account: acc, amount: '5' }, { type: 'transfer', id, from: acc, to: ['x'], amount: 1 }];
      return { ref, kind, key: acc, value: json(shapes[w.int(shapes.length)]), headers, expect: ['malformed'] };
    }
    case 'missing-field': {
      const shapes: unknown[] = [{ type: 'deposit', id, amount: 5 }, { type: 'deposit', account: acc, amount: 5 }, { type: 'transfer', id, from: acc, amount: 5 }, { type: 'transfer', id, from: acc, to: 'acc-1' }, { id, account: acc, amount: 5 }, {}];
      return { ref, kind, key: acc, value: json(shapes[w.int(shapes.length)]), headers, expect: ['malformed'] };
    }
    case 'negative-amount': {
      const command: Command = w.int(2) === 0 ? { type: 'deposit', id, account: acc, amount: -1 - w.int(1000) } : { type: 'transfer', id, from: acc, to: 'acc-3', amount: -1 - w.int(1000) };
      return { ref, kind, key: acc, value: json(command), headers, expect: ['invalid-amount'], command };
    }
    case 'unknown-account': {
      const command: Command = { type: 'transfer', id, from: acc, to: `ghost-${n}`, amount: 1 };
      return { ref, kind, key: acc, value: json(command), headers, expect: ['unknown-account'], command };
    }
    case 'huge': {
      const size = MAX_COMMAND_BYTES + 1 + w.int(700_000);
      const value = json({ type: 'deposit', id, account: acc, amount: 5, memo: 'x'.repeat(size) });
      return { ref, kind, key: acc, value, headers, expect: ['too-large'] };
    }
    case 'null-key':
      return { ref, kind, key: null, value: json({ type: 'deposit', id, account: acc, amount: 5 }), headers, expect: ['missing-key'] };
    case 'wrong-key':
      return { ref, kind, key: `acc-${1000 + n}`, value: json({ type: 'deposit', id, account: acc, amount: 5 }), headers, expect: ['key-mismatch'] };
    case 'null-value':
      return { ref, kind, key: acc, value: null, headers, expect: ['malformed'] };
  }
}

const KINDS: readonly BadKind[] = ['random-bytes', 'wrong-schema', 'missing-field', 'negative-amount', 'huge', 'null-key', 'wrong-key', 'null-value', 'unknown-account'];

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const w = new Workload({ seed: opts.seed ?? 11, accounts: 20 });
  const validN = opts.valid ?? 3_000;
  const badN = opts.bad ?? 300;
  // Valid traffic with bad records at random places; every kind appears.
  const items: (SendableRecord & { command?: Command; bad?: BadRecord })[] = w.batch(validN).map((r) => ({ key: r.key, value: r.value, command: r.command }));
  const bads: BadRecord[] = [];
  for (let n = 0; n < badN; n++) {
    const kind = n < KINDS.length ? KINDS[n]! : KINDS[w.int(KINDS.length)]!;
    // Huge payloads cost broker I/O; keep them few.
    const bad = kind === 'huge' && bads.filter((b) => b.kind === 'huge').length >= 6 ? badRecord(w, n, 'random-bytes') : badRecord(w, n, kind);
    bads.push(bad);
    items.splice(w.int(items.length + 1), 0, { key: bad.key, value: bad.value, headers: bad.headers!, ...(bad.command ? { command: bad.command } : {}), bad });
  }

  const stateDir = mkdtempSync(join(tmpdir(), 'vltava-fuzz-'));
  const app = createLedgerApp({
    applicationId: opts.applicationId,
    brokers: opts.brokers,
    partitions: opts.partitions,
    topics: opts.topics,
    stateDir,
    sessionTimeoutMs: 6_000,
    processingExceptionHandler: { deadLetterTopic: opts.deadLetterTopic },
    deserializationExceptionHandler: { deadLetterTopic: opts.deadLetterTopic },
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  const states: string[] = [];
  const errors: string[] = [];
  app.on('app.state', ({ to }) => states.push(to));
  app.on('error', ({ error }) => errors.push(error.message));
  try {
    await app.start();
    const producer = await commandProducer(opts.kafka);
    // Huge records go alone (a produce request holds at most ~1 MB per partition).
    let chunk: SendableRecord[] = [];
    for (const it of items) {
      if ((it.value?.length ?? 0) > MAX_COMMAND_BYTES) {
        await sendRecords(producer, opts.topics.commands, chunk);
        chunk = [];
        await sendRecords(producer, opts.topics.commands, [it]);
      } else chunk.push(it);
    }
    await sendRecords(producer, opts.topics.commands, chunk, 200);
    await producer.disconnect();
  } catch (e) {
    await app.close();
    rmSync(stateDir, { recursive: true, force: true });
    throw e;
  }
  const admin = await adminOf(opts.kafka);
  await awaitCaughtUp(admin, opts.applicationId, opts.topics.commands, 120_000);
  await awaitCaughtUp(admin, opts.applicationId, `${opts.applicationId}-credits-repartition`, 120_000);
  await admin.disconnect();
  const stateAtEnd = app.state;
  await app.close();
  rmSync(stateDir, { recursive: true, force: true });

  const ref = referenceModel(items.filter((i) => i.command !== undefined).map((i) => i.command!));
  const { report: ledger, outputs } = await verifyOnBroker(opts.kafka, opts.topics, ref);
  const dlq = await readCommitted(opts.kafka, opts.deadLetterTopic);
  const violations = [...ledger.violations];
  const byRef = new Map<string, RejectionCode[]>();
  for (const { value } of outputs.rejections) if (value.ref !== undefined) byRef.set(value.ref, [...(byRef.get(value.ref) ?? []), value.code]);
  let matched = 0;
  for (const b of bads) {
    const codes = byRef.get(b.ref) ?? [];
    if (codes.length === 1 && b.expect.includes(codes[0]!)) matched++;
    else violations.push(`${b.ref} (${b.kind}): rejected ${codes.length} times${codes.length > 0 ? ` as ${codes.join(', ')}` : ''}, expected once as ${b.expect.join(' or ')}`);
  }
  if (dlq.length > 0) violations.push(`${dlq.length} record(s) in the dead-letter topic: the ledger rejects bad input itself, nothing should need the DLQ`);
  if (stateAtEnd !== 'RUNNING') violations.push(`the app was ${stateAtEnd} at the end, not RUNNING`);
  if (states.includes('ERROR')) violations.push('the app went to ERROR');
  if (errors.length > 0) violations.push(`error events: ${errors.slice(0, 3).join(' | ')}`);
  const badByKind: Record<string, number> = {};
  for (const b of bads) badByKind[b.kind] = (badByKind[b.kind] ?? 0) + 1;
  return {
    validSent: validN,
    badSent: bads.length,
    badByKind,
    rejectionsMatched: matched,
    deadLettered: dlq.length,
    appStates: states,
    appErrors: errors,
    ledger,
    violations: violations.slice(0, 30),
    ok: violations.length === 0,
  };
}

async function adminOf(kafka: Kafka) {
  const admin = kafka.admin();
  await admin.connect();
  return admin;
}
