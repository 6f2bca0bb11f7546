/**
 * THE COMMIT PROTOCOL. Every step of committing one task lives in this file, in this order.
 *
 * Exactly-once, every commit interval, for each task with pending work:
 *   0. Flush the task: record caches emit their collapsed changelog records into the collector;
 *      take the input offsets (last processed + 1) to commit; screen the records against their
 *      topics' limits (productionGuard.ts: a record the broker would reject never poisons the
 *      transaction) and give each one an explicit partition (murmur2 of its key).
 *   1. Begin a transaction on the task's own producer (transactionalId = <appId>-<taskId>).
 *   2. Send the buffered outputs, repartition records and changelog records in it, in chunks of at
 *      most 2,000 records / 512 KiB per sendBatch call.
 *   3. sendOffsets: the input offsets, under group = applicationId (retrying coordinator errors).
 *   4. Commit the transaction.
 *   5. Apply the store overlays and the changelog offsets to LevelDB in one atomic batch
 *      (the checkpoint never moves backwards).
 * If 1-4 fail: abort the transaction and drop the overlays (LevelDB untouched); the caller rewinds the
 * task to its committed offsets. A fencing error becomes TaskMigratedError: the caller closes the task
 * without committing and lets the group reassign it.
 *
 * At-least-once uses the same steps with a plain idempotent producer: 2. send, 3+4. commit the input
 * offsets through the consumer after the send was acknowledged, 5. the same LevelDB batch.
 *
 * Starting a task (see ActiveTask.init) is the other half of the protocol:
 *   1. init the transactional producer (fences a zombie, finishes its transaction);
 *   2. only then read the committed input offsets;
 *   3. restore the stores from their checkpoints to the end of the changelogs;
 *   4. process.
 */
import type { CollectedRecord } from '@vltava/dsl';
import type { TaskStores } from '@vltava/state';
import type { Message, Producer, RecordMetadata, TopicMessages } from 'kafkajs';
import type { CommitPoint } from '../config.js';
import { toTaskError } from './kafkaErrors.js';
import { sendOffsetsWithRetry } from './sendOffsets.js';
import { BATCH_HEADER_BYTES, recordBatchBytes } from './productionGuard.js';

export interface CommitContext {
  readonly taskId: string;
  readonly groupId: string;
  readonly exactlyOnce: boolean;
  readonly producer: Producer;
  readonly stores: TaskStores;
  /** Changelog topic -> store name, for turning send results into checkpoints. */
  readonly changelogStores: ReadonlyMap<string, string>;
  /** The task's buffered records since the last commit (taken and cleared by commitTask). */
  readonly buffer: CollectedRecord[];
  /** Step 0: flush caches, return the input offsets to commit (topic -> next offset). */
  prepare(): ReadonlyMap<string, number>;
  readonly partition: number;
  /** Committed with every input offset: the task's stream time (see ActiveTask.encodeOffsetMetadata). */
  readonly metadata: string;
  /** At-least-once: commit input offsets through the consumer. */
  commitConsumerOffsets(offsets: { topic: string; partition: number; offset: string; metadata: string }[]): Promise<void>;
  readonly faultInjection: ((point: CommitPoint, taskId: string) => void) | undefined;
  /** Step 0: records the broker would reject go to the productionExceptionHandler (productionGuard.ts). */
  screen(records: CollectedRecord[]): CollectedRecord[];
  /** The partition of a record that has none: our own murmur2 of its key, so kafkajs' partitioner never runs. */
  partitionFor(topic: string, key: Buffer | null): number | undefined;
  /** The topic's max.message.bytes: the largest record batch one partition may get. */
  maxBatchBytes(topic: string): number;
}

export interface CommitResult {
  readonly records: number;
  readonly latencyMs: number;
}

/**
 * The records as kafkajs messages. A collected record already has a message's fields (key, value,
 * headers, a number timestamp, which the runtime's produce encoder takes as it is, and kafkajs'
 * own encoder too): it gets its partition and goes as it is, without a message object per record.
 */
function toTopicMessages(records: readonly CollectedRecord[], partitions: readonly (number | undefined)[], from: number, to: number): TopicMessages[] {
  const byTopic = new Map<string, Message[]>();
  for (let k = from; k < to; k++) {
    const r = records[k]!;
    let list = byTopic.get(r.topic);
    if (list === undefined) byTopic.set(r.topic, (list = []));
    const partition = partitions[k];
    if (partition !== undefined) (r as { partition?: number }).partition = partition;
    list.push(r as unknown as Message);
  }
  const out: TopicMessages[] = [];
  for (const [topic, messages] of byTopic) out.push({ topic, messages });
  return out;
}

/** Records per sendBatch call, and bytes: keeps every produce request small and kafkajs' per-call work short. */
const CHUNK_RECORDS = 2_000;
const CHUNK_BYTES = 512 * 1024;

/**
 * Sends the records in chunks (several sendBatch calls in one transaction are fine) and returns the
 * offset of each store's last changelog record. kafkajs sends one record batch per partition per call,
 * so within a call a partition's records are contiguous from its baseOffset. A partition's batch must
 * fit its topic's max.message.bytes (the limit is on the batch, not the record): a chunk ends before a
 * record that would make any partition's batch, or the chunk, too large; a record too large alone
 * was caught by the screen.
 */
async function sendChunked(
  send: (topicMessages: TopicMessages[]) => Promise<RecordMetadata[]>,
  records: readonly CollectedRecord[],
  changelogStores: ReadonlyMap<string, string>,
  partition: number,
  partitionFor: CommitContext['partitionFor'],
  maxBatchBytes: CommitContext['maxBatchBytes'],
): Promise<Map<string, number>> {
  const lastOffsets = new Map<string, number>();
  const n = records.length;
  const partitions: (number | undefined)[] = new Array(n);
  // Per topic: its batch limit and, per partition, the bytes of the chunk's batch so far (reset per
  // chunk by bumping `epoch`), so the per-record loop does one Map lookup and no string building.
  const topics = new Map<string, { readonly limit: number; bytes: number[]; epochs: number[] }>();
  let epoch = 0;
  for (let i = 0; i < n; ) {
    epoch++;
    let bytes = 0;
    let j = i;
    while (j < n && j - i < CHUNK_RECORDS) {
      const r = records[j]!;
      let p = partitions[j];
      if (p === undefined) p = partitions[j] = r.partition ?? partitionFor(r.topic, r.key);
      let acc = topics.get(r.topic);
      if (acc === undefined) topics.set(r.topic, (acc = { limit: maxBatchBytes(r.topic), bytes: [], epochs: [] }));
      const slot = p ?? 0x7fffffff;
      const size = recordBatchBytes(r) - BATCH_HEADER_BYTES;
      const batch = acc.epochs[slot] === epoch ? acc.bytes[slot]! : BATCH_HEADER_BYTES;
      if (j > i && (bytes + size > CHUNK_BYTES || batch + size > acc.limit)) break;
      acc.epochs[slot] = epoch;
      acc.bytes[slot] = batch + size;
      bytes += size;
      j++;
    }
    const results = await send(toTopicMessages(records, partitions, i, j));
    let counts: Map<string, number> | undefined;
    for (let k = i; k < j; k++) {
      const topic = records[k]!.topic;
      if (changelogStores.has(topic)) (counts ??= new Map()).set(topic, (counts.get(topic) ?? 0) + 1);
    }
    i = j;
    if (counts === undefined) continue;
    for (const [topic, count] of counts) {
      const hits = results.filter((m) => m.topicName === topic && m.partition === partition);
      if (hits.length === 0) continue;
      const base = Math.min(...hits.map((h) => Number(h.baseOffset)));
      // One batch per partition per call: exact. Should kafkajs ever split it, base - 1 is a safe
      // lower bound (a checkpoint too low replays a little more; one too high would lose data).
      const last = hits.length === 1 ? base + count - 1 : base - 1;
      const store = changelogStores.get(topic)!;
      lastOffsets.set(store, Math.max(lastOffsets.get(store) ?? -1, last));
    }
  }
  return lastOffsets;
}

export async function commitTask(ctx: CommitContext): Promise<CommitResult> {
  const t0 = Date.now();
  const fault = ctx.faultInjection;
  // 0. Flush caches; take the offsets and the records of this commit.
  const offsets = ctx.prepare();
  const records = ctx.screen(ctx.buffer.splice(0));
  const offsetTopics = [...offsets].map(([topic, offset]) => ({ topic, partitions: [{ partition: ctx.partition, offset: String(offset), metadata: ctx.metadata }] }));
  fault?.('before-send', ctx.taskId);

  if (ctx.exactlyOnce) {
    // 1. Begin.
    const tx = await ctx.producer.transaction();
    let checkpoints = new Map<string, number>();
    try {
      // 2. Send outputs, repartition and changelog records (in chunks).
      checkpoints = await sendChunked((topicMessages) => tx.sendBatch({ topicMessages }), records, ctx.changelogStores, ctx.partition, ctx.partitionFor, ctx.maxBatchBytes);
      fault?.('after-send', ctx.taskId);
      // 3. The input offsets, in the same transaction.
      if (offsetTopics.length > 0) await sendOffsetsWithRetry(tx, { consumerGroupId: ctx.groupId, topics: offsetTopics });
      fault?.('after-offsets', ctx.taskId);
      // 4. Commit.
      await tx.commit();
    } catch (err) {
      await tx.abort().catch(() => undefined);
      ctx.stores.abort();
      throw toTaskError(err, ctx.taskId);
    }
    fault?.('after-commit', ctx.taskId);
    // 5. Overlays + changelog offsets into LevelDB, one atomic batch.
    await ctx.stores.commit(checkpoints);
    fault?.('after-checkpoint', ctx.taskId);
    return { records: records.length, latencyMs: Date.now() - t0 };
  }

  // At-least-once: send, then commit offsets through the consumer, then the LevelDB batch.
  let checkpoints = new Map<string, number>();
  try {
    checkpoints = await sendChunked((topicMessages) => ctx.producer.sendBatch({ topicMessages, acks: -1 }), records, ctx.changelogStores, ctx.partition, ctx.partitionFor, ctx.maxBatchBytes);
    fault?.('after-send', ctx.taskId);
    if (offsetTopics.length > 0) {
      await ctx.commitConsumerOffsets(offsetTopics.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: p.partition, offset: p.offset, metadata: p.metadata }))));
    }
    fault?.('after-offsets', ctx.taskId);
  } catch (err) {
    ctx.stores.abort();
    throw toTaskError(err, ctx.taskId);
  }
  fault?.('after-commit', ctx.taskId);
  await ctx.stores.commit(checkpoints);
  fault?.('after-checkpoint', ctx.taskId);
  return { records: records.length, latencyMs: Date.now() - t0 };
}
