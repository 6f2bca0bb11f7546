/**
 * The `ChangelogReader` port of `@vltava/state`, on kafkajs.
 *
 * kafkajs has no manual partition assignment, so a read uses a throwaway consumer group of its own
 * (`<appId>-restore-<random>`), which is the only member and so gets every partition of the
 * changelog topic. All partitions but the one being restored are paused, the restored one is
 * seeked to `fromOffset`, and records are handed over batch by batch (read_committed) until a
 * batch's last offset (control records included, seen through END_BATCH_PROCESS because kafkajs skips
 * eachBatch for marker-only batches) reaches `toOffset`. The group never commits
 * offsets, so the broker forgets it once it is empty.
 *
 * Offsets: `endOffset` is the high watermark. A changelog partition is written only by its task's
 * transactional producer, which is initialised (fencing any zombie and finishing its transaction)
 * before the restore, so no transaction is open there and the last stable offset equals it.
 */
import { randomBytes } from 'node:crypto';
import type { ChangelogReader, ChangelogRecord } from '@vltava/state';
import { ChangelogTruncatedError } from '@vltava/state';
import type { Admin, Kafka } from 'kafkajs';

export interface KafkaChangelogReaderOptions {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly applicationId: string;
  /** Upper bound of one read, to turn a hang into an error (default 5 min). */
  readonly readTimeoutMs?: number;
}

export class KafkaChangelogReader implements ChangelogReader {
  constructor(private readonly opts: KafkaChangelogReaderOptions) {}

  private async offsets(topic: string, partition: number): Promise<{ low: number; high: number }> {
    const all = await this.opts.admin.fetchTopicOffsets(topic);
    const p = all.find((o) => o.partition === partition);
    if (!p) throw new Error(`changelog topic ${topic} has no partition ${partition}`);
    return { low: Number(p.low), high: Number(p.high) };
  }

  async endOffset(topic: string, partition: number): Promise<number> {
    return (await this.offsets(topic, partition)).high;
  }

  async beginningOffset(topic: string, partition: number): Promise<number> {
    return (await this.offsets(topic, partition)).low;
  }

  async read(
    topic: string,
    partition: number,
    fromOffset: number,
    toOffset: number,
    onBatch: (records: readonly ChangelogRecord[]) => Promise<void> | void,
  ): Promise<void> {
    if (fromOffset >= toOffset) return;
    const { low } = await this.offsets(topic, partition);
    if (fromOffset < low) throw new ChangelogTruncatedError(topic, partition, fromOffset, low);

    const meta = await this.opts.admin.fetchTopicMetadata({ topics: [topic] });
    const others = (meta.topics[0]?.partitions ?? []).map((p) => p.partitionId).filter((p) => p !== partition);
    const consumer = this.opts.kafka.consumer({
      groupId: `${this.opts.applicationId}-restore-${randomBytes(6).toString('hex')}`,
      readUncommitted: false,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: 8 * 1024 * 1024,
      retry: { retries: 10 },
    });
    const timeoutMs = this.opts.readTimeoutMs ?? 300_000;
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`Restoring ${topic}-${partition} [${fromOffset}, ${toOffset}) did not finish within ${timeoutMs} ms.`)),
          timeoutMs,
        );
        let finished = false;
        const finish = (err?: unknown): void => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          if (err === undefined) resolve();
          else reject(err);
        };
        // kafkajs does not call eachBatch for a batch that holds only control records (transaction
        // markers) or aborted records, but it reports it here: the tail of a changelog often is one.
        const offBatch = consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
          if (e.payload.partition === partition && Number(e.payload.lastOffset) + 1 >= toOffset) {
            offBatch();
            finish();
          }
        });
        consumer
          .run({
            autoCommit: false,
            eachBatchAutoResolve: false,
            eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
              if (finished || batch.partition !== partition) return;
              const records: ChangelogRecord[] = [];
              for (const m of batch.messages) {
                const offset = Number(m.offset);
                if (offset < fromOffset || offset >= toOffset) continue;
                if (m.key === null) continue; // changelog records always have keys
                records.push({ offset, key: m.key, value: m.value, timestamp: Number(m.timestamp), headers: (m.headers ?? {}) as ChangelogRecord['headers'] });
              }
              try {
                if (records.length > 0) await onBatch(records);
              } catch (e) {
                finish(e);
                return;
              }
              const last = Number(batch.lastOffset());
              resolveOffset(batch.lastOffset());
              await heartbeat();
              if (last + 1 >= toOffset) finish();
            },
          })
          .then(() => {
            // run() resolves even when the group join failed (e.g. not authorized to use the
            // group <appId>-restore-*): pause/seek then throw, and that must fail the read, not
            // escape as an unhandled rejection that kills the process.
            try {
              if (others.length > 0) consumer.pause([{ topic, partitions: others }]);
              consumer.seek({ topic, partition, offset: String(fromOffset) });
            } catch (e) {
              finish(
                new Error(
                  `Restoring ${topic}-${partition} could not start its reader (consumer group ${this.opts.applicationId}-restore-*): ${(e as Error).message}. If the cluster uses ACLs, grant Read on groups prefixed "${this.opts.applicationId}-" (docs/security.md).`,
                  { cause: e },
                ),
              );
            }
          }, finish);
      });
    } finally {
      await consumer.disconnect().catch(() => undefined);
    }
  }
}
