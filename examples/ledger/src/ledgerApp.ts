/**
 * Running the ledger on Kafka: topic creation and the KafkaStreams app.
 *
 *   await createLedgerTopics(admin, { partitions: 4 });
 *   const app = createLedgerApp({ applicationId: 'ledger', brokers: ['127.0.0.1:9092'], partitions: 4 });
 *   await app.start();
 */
import { KafkaStreams, type StreamsConfig } from '@vltava/runtime';
import type { Admin } from 'kafkajs';
import { DEFAULT_TOPICS, buildLedgerTopology, type LedgerOptions, type LedgerTopics } from './buildLedgerTopology.js';

export interface LedgerAppConfig extends StreamsConfig, Omit<LedgerOptions, 'topics'> {
  readonly topics?: Partial<LedgerTopics>;
}

export function ledgerTopics(topics: Partial<LedgerTopics> = {}): LedgerTopics {
  return { ...DEFAULT_TOPICS, ...topics };
}

/** The ledger as a KafkaStreams app (exactly-once by default, like every Vltava app). */
export function createLedgerApp(config: LedgerAppConfig): KafkaStreams {
  const { topics, partitions, isKnownAccount, dedupeRetentionMs, ...streams } = config;
  const topology = buildLedgerTopology({
    topics: ledgerTopics(topics),
    ...(partitions === undefined ? {} : { partitions }),
    ...(isKnownAccount === undefined ? {} : { isKnownAccount }),
    ...(dedupeRetentionMs === undefined ? {} : { dedupeRetentionMs }),
  });
  return new KafkaStreams(topology, streams);
}

/**
 * Creates the ledger's input and output topics if missing (the app creates only its internal
 * topics). The commands topic gets `partitions`, as must `createLedgerApp`'s `partitions`.
 */
export async function createLedgerTopics(admin: Admin, opts: { partitions: number; topics?: Partial<LedgerTopics>; extra?: readonly string[] }): Promise<LedgerTopics> {
  const t = ledgerTopics(opts.topics);
  const existing = new Set(await admin.listTopics());
  const wanted = [t.commands, t.balances, t.journal, t.rejections, ...(opts.extra ?? [])].filter((name) => !existing.has(name));
  if (wanted.length > 0) {
    await admin.createTopics({ waitForLeaders: true, topics: wanted.map((topic) => ({ topic, numPartitions: opts.partitions, replicationFactor: 1 })) });
  }
  return t;
}
