/**
 * The smallest exactly-once pipeline: consume with a consumer group, transform, and produce the
 * outputs plus the input offsets in ONE kafkajs transaction. It is the chain the runtime stands on,
 * proven in isolation by the smoke tests (tools/smoke/src/eosSmoke.test.ts).
 *
 * Fault injection (for the crash tests): `crashAt` SIGKILLs this process inside a transaction.
 */
import { sendOffsetsWithRetry } from '@vltava/runtime';
import { Kafka, logLevel, type Consumer, type Producer } from 'kafkajs';

export interface CopierOptions {
  readonly brokers: string[];
  readonly input: string;
  readonly output: string;
  readonly groupId: string;
  readonly transactionalId: string;
  /** Transforms the value; the key is kept. */
  readonly transform?: (value: string) => string;
  /**
   * Fault injection: SIGKILL this process in the `tx`-th transaction, either after its sends
   * ('after-send') or after its sendOffsets ('after-offsets'); both are before the commit.
   */
  readonly crashAt?: { readonly tx: number; readonly point: 'after-send' | 'after-offsets' };
  /** Called after every commit with the running total of committed records. */
  readonly onCommit?: (total: number) => void;
  readonly sessionTimeout?: number;
}

export interface RunningCopier {
  /** Milliseconds that producer.connect() (InitProducerId: fencing a zombie) took. */
  readonly initMs: number;
  committed(): number;
  stop(): Promise<void>;
}

export async function startCopier(opts: CopierOptions): Promise<RunningCopier> {
  const kafka = new Kafka({ clientId: `copier-${opts.transactionalId}`, brokers: opts.brokers, logLevel: logLevel.NOTHING });
  const producer: Producer = kafka.producer({
    transactionalId: opts.transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: 30_000,
  });
  // Step 1 of starting a task: init the transactional producer first. This fences any zombie and
  // aborts (or completes) its open transaction, so the offsets read next are final.
  // kafkajs: connect() does NOT send a transactional InitProducerId; the first transaction() does.
  // An empty transaction that is aborted at once inits (and fences) without touching the broker further.
  await producer.connect();
  const t0 = Date.now();
  await (await producer.transaction()).abort();
  const initMs = Date.now() - t0;

  const consumer: Consumer = kafka.consumer({
    groupId: opts.groupId,
    readUncommitted: false,
    sessionTimeout: opts.sessionTimeout ?? 6_000,
    heartbeatInterval: 500,
    rebalanceTimeout: 10_000,
  });
  await consumer.connect();
  await consumer.subscribe({ topic: opts.input, fromBeginning: true });
  let transactions = 0;
  let total = 0;
  const transform = opts.transform ?? ((v: string) => v);
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      if (!isRunning() || isStale() || batch.messages.length === 0) return;
      const tx = await producer.transaction();
      try {
        await tx.send({
          topic: opts.output,
          messages: batch.messages.map((m) => ({ key: m.key, value: transform(m.value?.toString() ?? ''), partition: batch.partition })),
        });
        transactions++;
        const crash = opts.crashAt?.tx === transactions ? opts.crashAt.point : undefined;
        if (crash === 'after-send') process.kill(process.pid, 'SIGKILL');
        const last = batch.messages[batch.messages.length - 1]!;
        await sendOffsetsWithRetry(tx, {
          consumerGroupId: opts.groupId,
          topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: String(BigInt(last.offset) + 1n) }] }],
        });
        if (crash === 'after-offsets') process.kill(process.pid, 'SIGKILL');
        await tx.commit();
      } catch (e) {
        await tx.abort().catch(() => undefined);
        throw e;
      }
      for (const m of batch.messages) resolveOffset(m.offset);
      total += batch.messages.length;
      opts.onCommit?.(total);
      await heartbeat();
    },
  });
  return {
    initMs,
    committed: () => total,
    stop: async () => {
      await consumer.disconnect();
      await producer.disconnect();
    },
  };
}
