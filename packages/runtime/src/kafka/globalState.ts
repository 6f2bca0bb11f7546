/**
 * Global tables on Kafka: every instance keeps a full copy of each global table's topic (all
 * partitions), read outside the application's consumer group by a consumer group of its own that
 * never commits. `start()` resolves once the copy has caught up with the topic's end as of start-up,
 * so stream tasks that join a global table never see it half-loaded; afterwards it follows new
 * records. The stores are in memory and rebuilt from the topic at every start (the topic is their
 * changelog). Records go through the shared GlobalStateTask, as in the TopologyTestDriver.
 *
 * - Loading ends at each partition's end offset as of start-up, compared with the log start: an
 *   empty partition whose end is above 0 (after retention or deleteRecords) has nothing to load.
 * - The private group never commits, so after a rebalance of it (a reconnect) kafkajs would start
 *   again from the beginning and replay the whole topic over the live store: the manager tracks its
 *   own position per partition and seeks there after every rejoin.
 * - A record that cannot be processed goes to the deserializationExceptionHandler's policy
 *   ('log-and-continue' skips it with a warning); with 'fail' (or a dead-letter topic, which a
 *   global table has no transaction for) the app goes to ERROR with the record's coordinates,
 *   instead of the table freezing at that record.
 */
import { randomBytes } from 'node:crypto';
import { StreamsError, type Topology } from '@vltava/dsl';
import { openTaskStoresSync, type TaskStores } from '@vltava/state';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import type { ResolvedConfig } from '../config.js';
import { GlobalStateTask, type InputRecord } from '@vltava/executor';

export class GlobalStateManager {
  readonly stores: TaskStores;
  private readonly task: GlobalStateTask;
  private consumer: Consumer | undefined;

  constructor(
    private readonly topology: Topology,
    private readonly config: ResolvedConfig,
    private readonly kafka: Kafka,
    private readonly admin: Admin,
    private readonly onError: (err: Error) => void = () => undefined,
  ) {
    this.stores = openTaskStoresSync({
      applicationId: config.applicationId,
      taskId: 'global',
      partition: 0,
      specs: topology.globalStoreSpecs(),
      collector: { send: () => undefined }, // the topic itself is the changelog of a global store
      backend: 'memory',
      cacheMaxBytes: 0,
    });
    this.task = new GlobalStateTask({ topology, stores: this.stores, logger: config.logger });
  }

  /** Loads every global topic to its current end, then keeps following it. */
  async start(): Promise<void> {
    const topics = this.task.topics();
    const ends = new Map<string, number>();
    const pending = new Set<string>();
    for (const topic of topics) {
      for (const p of await this.admin.fetchTopicOffsets(topic)) {
        ends.set(`${topic}:${p.partition}`, Number(p.high));
        if (Number(p.high) > Number(p.low)) pending.add(`${topic}:${p.partition}`);
      }
    }
    /** Next offset to read per `topic:partition`, so a rejoin of the private group resumes, not replays. */
    const positions = new Map<string, number>();
    let joins = 0;
    const consumer = this.kafka.consumer({
      groupId: `${this.config.applicationId}-global-${randomBytes(6).toString('hex')}`,
      readUncommitted: false,
      sessionTimeout: this.config.sessionTimeoutMs,
      heartbeatInterval: this.config.heartbeatIntervalMs,
      maxWaitTimeInMs: 200,
    });
    this.consumer = consumer;
    let loaded!: () => void;
    let loadFailed!: (e: Error) => void;
    const caughtUp = new Promise<void>((resolve, reject) => ((loaded = resolve), (loadFailed = reject)));
    const reached = (topic: string, partition: number, next: number): void => {
      const key = `${topic}:${partition}`;
      if (pending.has(key) && next >= (ends.get(key) ?? 0)) {
        pending.delete(key);
        if (pending.size === 0) loaded();
      }
    };
    if (pending.size === 0) loaded();
    // Marker-only batches never reach eachBatch (docs/kafkajs-notes.md §6).
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const next = Number(payload.lastOffset) + 1;
      const key = `${payload.topic}:${payload.partition}`;
      if (next > (positions.get(key) ?? 0)) positions.set(key, next);
      reached(payload.topic, payload.partition, next);
    });
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (joins++ === 0) return;
      for (const [key, offset] of positions) {
        const i = key.lastIndexOf(':');
        consumer.seek({ topic: key.slice(0, i), partition: Number(key.slice(i + 1)), offset: String(offset) });
      }
    });
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        const key = `${batch.topic}:${batch.partition}`;
        const from = positions.get(key) ?? 0;
        for (const m of batch.messages) {
          if (Number(m.offset) < from) continue;
          const record: InputRecord = {
            topic: batch.topic,
            partition: batch.partition,
            offset: Number(m.offset),
            key: m.key,
            value: m.value,
            timestamp: Number(m.timestamp),
          };
          try {
            this.task.process(record);
          } catch (err) {
            if (this.config.deserializationExceptionHandler === 'log-and-continue') {
              this.config.logger.warn(`global table: skipped the record at ${batch.topic}-${batch.partition}@${m.offset}: ${(err as Error).message}`);
              continue;
            }
            const error = new StreamsError(
              `global table: the record at ${batch.topic}-${batch.partition}@${m.offset} cannot be processed: ${(err as Error).message}. ` +
                `Fix or delete it, or set deserializationExceptionHandler: 'log-and-continue' to skip such records.`,
              { cause: err },
            );
            if (pending.size > 0) loadFailed(error);
            else this.onError(error);
            throw error;
          }
        }
        positions.set(key, Number(batch.lastOffset()) + 1);
        this.stores.flush();
        this.stores.commitSync(new Map());
        resolveOffset(batch.lastOffset());
        await heartbeat();
      },
    });
    await caughtUp;
  }

  async close(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
    await this.stores.close().catch(() => undefined);
  }
}
