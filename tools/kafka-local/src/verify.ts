/**
 * Reading a topic completely with an independent read_committed consumer, for verification.
 *
 * No idle timers: before reading, a sentinel record is appended (plainly, outside any transaction)
 * to every partition. read_committed delivers in offset order up to the last stable offset, so
 * once this call's sentinel has arrived on a partition, every committed record before it has too.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';

export const SENTINEL_KEY = '__vltava_sentinel__';

export interface ReadRecord {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly partition: number;
  readonly offset: string;
  /** `value` as UTF-8 ('' for null). */
  readonly text: string;
}

export async function readCommitted(kafka: Kafka, topic: string, opts: { timeoutMs?: number } = {}): Promise<ReadRecord[]> {
  const admin = kafka.admin();
  await admin.connect();
  const meta = await admin.fetchTopicMetadata({ topics: [topic] });
  await admin.disconnect();
  const partitions = meta.topics[0]?.partitions.map((p) => p.partitionId) ?? [];
  const marker = randomUUID();
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: partitions.map((partition) => ({ partition, key: SENTINEL_KEY, value: marker })) });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `verify-${marker}`, readUncommitted: false, sessionTimeout: 6_000 });
  const records: ReadRecord[] = [];
  const pending = new Set(partitions);
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const timeoutMs = opts.timeoutMs ?? 60_000;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`readCommitted(${topic}): sentinels of partitions ${[...pending].join(',')} not seen within ${timeoutMs} ms`)),
        timeoutMs,
      );
      void consumer.run({
        autoCommit: false,
        eachMessage: async ({ message, partition }) => {
          const key = message.key?.toString() ?? '';
          if (key === SENTINEL_KEY) {
            if (message.value?.toString() === marker) {
              pending.delete(partition);
              if (pending.size === 0) {
                clearTimeout(timer);
                resolve();
              }
            }
            return;
          }
          records.push({ key: message.key, value: message.value, partition, offset: message.offset, text: message.value?.toString() ?? '' });
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return records;
}

/** Which expected values are missing or duplicated, and which values were not expected at all. */
export function exactlyOnceReport(expected: readonly string[], actual: readonly string[]): { duplicates: string[]; missing: string[]; unexpected: string[] } {
  const counts = new Map<string, number>();
  for (const v of actual) counts.set(v, (counts.get(v) ?? 0) + 1);
  const want = new Set(expected);
  return {
    duplicates: [...counts].filter(([, n]) => n > 1).map(([v]) => v),
    missing: expected.filter((v) => !counts.has(v)),
    unexpected: [...counts.keys()].filter((v) => !want.has(v)),
  };
}
