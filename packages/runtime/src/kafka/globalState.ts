/**
 * Global tables on Kafka: every instance keeps a full copy of each global table's topic (all
 * partitions), read outside the application's consumer group by a consumer group of its own that
 * never commits. `start()` resolves once the copy has caught up with the topic's end as of start-up,
 * so stream tasks that join a global table never see it half-loaded; afterwards it follows new
 * records. The stores are in memory and rebuilt from the topic at every start (the topic is their
 * changelog). Records go through the shared GlobalStateTask, as in the TopologyTestDriver.
 */
import { randomBytes } from 'node:crypto';
import type { Topology } from '@vltava/dsl';
import { openTaskStoresSync, type TaskStores } from '@vltava/state';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import type { ResolvedConfig } from '../config.js';
import { GlobalStateTask, type InputRecord } from '../task/index.js';

export class GlobalStateManager {
  readonly stores: TaskStores;
  private readonly task: GlobalStateTask;
  private consumer: Consumer | undefined;

  constructor(
    private readonly topology: Topology,
    private readonly config: ResolvedConfig,
    private readonly kafka: Kafka,
    private readonly admin: Admin,
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
    for (const topic of topics) {
      for (const p of await this.admin.fetchTopicOffsets(topic)) ends.set(`${topic}:${p.partition}`, Number(p.high));
    }
    const pending = new Set([...ends].filter(([, end]) => end > 0).map(([k]) => k));
    const consumer = this.kafka.consumer({
      groupId: `${this.config.applicationId}-global-${randomBytes(6).toString('hex')}`,
      readUncommitted: false,
      sessionTimeout: this.config.sessionTimeoutMs,
      heartbeatInterval: this.config.heartbeatIntervalMs,
      maxWaitTimeInMs: 200,
    });
    this.consumer = consumer;
    let loaded!: () => void;
    const caughtUp = new Promise<void>((resolve) => (loaded = resolve));
    const reached = (topic: string, partition: number, next: number): void => {
      const key = `${topic}:${partition}`;
      if (pending.has(key) && next >= (ends.get(key) ?? 0)) {
        pending.delete(key);
        if (pending.size === 0) loaded();
      }
    };
    if (pending.size === 0) loaded();
    // Marker-only batches never reach eachBatch (docs/kafkajs-notes.md §6).
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => reached(payload.topic, payload.partition, Number(payload.lastOffset) + 1));
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        for (const m of batch.messages) {
          const record: InputRecord = {
            topic: batch.topic,
            partition: batch.partition,
            offset: Number(m.offset),
            key: m.key,
            value: m.value,
            timestamp: Number(m.timestamp),
          };
          this.task.process(record);
        }
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
