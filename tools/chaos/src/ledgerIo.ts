/** Sending commands to a real broker and reading the ledger's committed outputs back. */
import { decodeOutputs, verifyLedger, type LedgerReport, type LedgerTopics, type ReferenceResult, type LedgerOutputs } from '@vltava/example-ledger';
import { readCommitted } from '@vltava/kafka-local/testing';
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

/** Reads journal, balances and rejections with independent read_committed consumers. */
export async function readLedgerOutputs(kafka: Kafka, topics: LedgerTopics, timeoutMs = 120_000): Promise<LedgerOutputs> {
  const [journal, balances, rejections] = await Promise.all([
    readCommitted(kafka, topics.journal, { timeoutMs }),
    readCommitted(kafka, topics.balances, { timeoutMs }),
    readCommitted(kafka, topics.rejections, { timeoutMs }),
  ]);
  return decodeOutputs({ journal, balances, rejections });
}

export async function verifyOnBroker(kafka: Kafka, topics: LedgerTopics, ref: ReferenceResult): Promise<{ report: LedgerReport; outputs: LedgerOutputs }> {
  const outputs = await readLedgerOutputs(kafka, topics);
  return { report: verifyLedger(ref, outputs), outputs };
}

/** `n` formatted with thousands separators. */
export const fmt = (n: number): string => n.toLocaleString('en-US');
