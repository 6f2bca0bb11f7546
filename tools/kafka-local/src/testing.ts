/**
 * The integration-test harness: hands a test file a real broker, creates uniquely named topics,
 * and deletes them afterwards. It never skips: with no broker, `before` fails with a message that
 * says how to get one (and under CI=true that fails the run).
 *
 *   import test from 'ava';
 *   import { useKafka } from '@vltava/kafka-local/testing';
 *   const kafka = useKafka(test);
 *   test('[broker] ...', async (t) => {
 *     const [input] = await kafka().createTopics([{ prefix: 'in', partitions: 2 }]);
 *   });
 */
import { randomBytes } from 'node:crypto';
import type { TestFn } from 'ava';
import { Kafka, logLevel, type Admin, type KafkaConfig } from 'kafkajs';
import { resolveBrokers, type ResolvedBrokers } from './brokers.js';
import { createTopicsAndWait } from './topics.js';

export { readCommitted, exactlyOnceReport, SENTINEL_KEY, type ReadRecord } from './verify.js';
export { awaitCaughtUp, committedOffsets, endOffsets } from './offsets.js';
export { readCommittedKcat, kcatScramWorksWithKafka4, librdkafkaVersion, KcatMissingError, type KcatOptions, type KcatRecord } from './kcat.js';

export interface TopicRequest {
  /** Readable part of the name; a unique suffix is added. */
  readonly prefix: string;
  readonly partitions?: number;
  readonly config?: Readonly<Record<string, string>>;
}

export interface TestKafka {
  readonly brokers: string[];
  readonly source: ResolvedBrokers['source'];
  /** A kafkajs client for this broker (quiet logs; `KAFKAJS_LOG=debug|info|warn|error` to see them). */
  client(config?: Partial<KafkaConfig>): Kafka;
  readonly admin: Admin;
  /** `<prefix>-<random>`: unique per call, so tests never share topics or groups. */
  uniqueName(prefix: string): string;
  /** Creates topics (waiting for leaders) and remembers them for cleanup; returns their names. */
  createTopics(requests: readonly TopicRequest[]): Promise<string[]>;
  /** Deletes the topics this harness created. */
  cleanup(): Promise<void>;
}

export function kafkaLogLevel(): logLevel {
  const l = process.env.KAFKAJS_LOG?.toLowerCase();
  return l === 'debug' ? logLevel.DEBUG : l === 'info' ? logLevel.INFO : l === 'warn' ? logLevel.WARN : l === 'error' ? logLevel.ERROR : logLevel.NOTHING;
}

export async function connectTestKafka(): Promise<TestKafka & { release(): Promise<void> }> {
  const resolved = await resolveBrokers();
  const run = randomBytes(3).toString('hex');
  let seq = 0;
  const client = (config: Partial<KafkaConfig> = {}): Kafka =>
    new Kafka({ clientId: `vltava-test-${run}`, logLevel: kafkaLogLevel(), ...config, brokers: resolved.brokers });
  const admin = client().admin();
  await admin.connect();
  const created: string[] = [];
  const uniqueName = (prefix: string): string => `${prefix}-${run}-${++seq}`;
  const cleanup = async (): Promise<void> => {
    if (created.length > 0) await admin.deleteTopics({ topics: created.splice(0) }).catch(() => undefined);
  };
  return {
    brokers: resolved.brokers,
    source: resolved.source,
    client,
    admin,
    uniqueName,
    async createTopics(requests) {
      const names = requests.map((r) => uniqueName(r.prefix));
      await createTopicsAndWait(
        admin,
        requests.map((r, i) => ({
          topic: names[i]!,
          numPartitions: r.partitions ?? 1,
          replicationFactor: 1,
          configEntries: Object.entries(r.config ?? {}).map(([name, value]) => ({ name, value })),
        })),
      );
      created.push(...names);
      return names;
    },
    cleanup,
    async release() {
      await cleanup();
      await admin.disconnect();
      await resolved.release();
    },
  };
}

/** Registers before/after hooks on an ava test function and returns a getter for the harness. */
export function useKafka<Context>(test: TestFn<Context>): () => TestKafka {
  let harness: (TestKafka & { release(): Promise<void> }) | undefined;
  test.before(async () => {
    harness = await connectTestKafka();
  });
  test.after.always(async () => {
    await harness?.release();
  });
  return () => {
    if (!harness) throw new Error('The Kafka test harness is not connected (its before hook failed; see above).');
    return harness;
  };
}
