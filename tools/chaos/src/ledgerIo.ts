/** Sending commands to a real broker and reading the ledger's committed outputs back. */
import { decodeOutputs, verifyLedger, type LedgerReport, type LedgerTopics, type ReferenceResult, type LedgerOutputs } from '@vltava/example-ledger';
import { readCommitted, type ReadRecord } from '@vltava/kafka-local/testing';
import { compareReadings, readCommittedWithKcat, type KcatRecord } from './kcatReader.js';
import type { Kafka, Message, Producer } from 'kafkajs';

export interface SendableRecord {
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers?: Record<string, string>;
}

/** An idempotent producer (a plain producer's retries could duplicate input: docs/kafkajs-notes.md). */
export async function commandProducer(kafka: Kafka): Promise<Producer> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 10 } });
  await producer.connect();
  return producer;
}

export async function sendRecords(producer: Producer, topic: string, records: readonly SendableRecord[], chunk = 500): Promise<void> {
  for (let i = 0; i < records.length; i += chunk) {
    const messages: Message[] = records.slice(i, i + chunk).map((r) => ({ key: r.key, value: r.value, ...(r.headers ? { headers: r.headers } : {}) }));
    await producer.send({ topic, messages });
  }
}

/** Reads journal, balances and rejections with independent read_committed consumers (kafkajs). */
export async function readLedgerOutputs(kafka: Kafka, topics: LedgerTopics, timeoutMs = 120_000): Promise<LedgerOutputs> {
  return decodeOutputs(await readRawOutputs(kafka, topics, timeoutMs));
}

type RawOutputs = { journal: ReadRecord[]; balances: ReadRecord[]; rejections: ReadRecord[] };

async function readRawOutputs(kafka: Kafka, topics: LedgerTopics, timeoutMs: number): Promise<RawOutputs> {
  const [journal, balances, rejections] = await Promise.all([
    readCommitted(kafka, topics.journal, { timeoutMs }),
    readCommitted(kafka, topics.balances, { timeoutMs }),
    readCommitted(kafka, topics.rejections, { timeoutMs }),
  ]);
  return { journal, balances, rejections };
}

/** The same three topics read by kcat (librdkafka), read_committed: a client that is not kafkajs. */
export async function readRawOutputsWithKcat(brokers: string, topics: LedgerTopics, timeoutMs = 120_000): Promise<{ journal: KcatRecord[]; balances: KcatRecord[]; rejections: KcatRecord[] }> {
  // One at a time: each is a kcat process, and the box is small.
  const journal = await readCommittedWithKcat(brokers, topics.journal, { timeoutMs });
  const balances = await readCommittedWithKcat(brokers, topics.balances, { timeoutMs });
  const rejections = await readCommittedWithKcat(brokers, topics.rejections, { timeoutMs });
  return { journal, balances, rejections };
}

export interface VerifyResult {
  readonly report: LedgerReport;
  readonly outputs: LedgerOutputs;
  /** Which client's reading the report checks. */
  readonly reader: 'kcat' | 'kafkajs';
  /** With both readers: every record one of them read and the other did not (empty when they agree). */
  readonly readerDiffs: readonly string[];
}

/**
 * Reads the ledger's outputs and checks them against the reference model. With `brokers`, it reads
 * with kcat as well as kafkajs, checks kcat's reading (the independent client) and reports every
 * difference between the two; without, kafkajs only.
 */
export async function verifyOnBroker(kafka: Kafka, topics: LedgerTopics, ref: ReferenceResult, opts: { brokers?: string; timeoutMs?: number } = {}): Promise<VerifyResult> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const viaKafkajs = await readRawOutputs(kafka, topics, timeoutMs);
  if (opts.brokers === undefined) {
    const outputs = decodeOutputs(viaKafkajs);
    return { report: verifyLedger(ref, outputs), outputs, reader: 'kafkajs', readerDiffs: [] };
  }
  const viaKcat = await readRawOutputsWithKcat(opts.brokers, topics, timeoutMs);
  const readerDiffs = (['journal', 'balances', 'rejections'] as const).flatMap((t) => compareReadings(topics[t], 'kafkajs', viaKafkajs[t], 'kcat', viaKcat[t]));
  const outputs = decodeOutputs(viaKcat);
  return { report: verifyLedger(ref, outputs), outputs, reader: 'kcat', readerDiffs };
}

/** `n` formatted with thousands separators. */
export const fmt = (n: number): string => n.toLocaleString('en-US');
