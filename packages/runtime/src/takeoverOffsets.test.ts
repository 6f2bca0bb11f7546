/**
 * Offsets after a takeover (issue 11, Kafka 3.9.1 "immediate takeovers after kills at after-offsets").
 *
 * A task's new owner does what ActiveTask.init does: it initialises the task's transactional producer
 * (`connect()`, then an empty `transaction().abort()`: the transactional InitProducerId, which fences
 * the old owner and completes or aborts its transaction) and only then reads the group's committed
 * offsets with kafkajs `admin.fetchOffsets` (an OffsetFetch without require_stable: kafkajs has no
 * KIP-447). The question is whether that read can be stale: the classic group coordinator of Kafka 3.x
 * applies a transaction's offsets to its cache on a scheduler thread (GroupMetadataManager
 * .scheduleHandleTxnCompletion). See docs/exactly-once.md, "Kafka 3.9.1: offsets after a takeover".
 *
 * Each iteration, against the same transactional id and group:
 *   - commit: the owner begins, sends a record, sendOffsets(next = c), commits (like a kill at
 *     `after-commit`); at once a new producer inits and reads: it must see c (never less);
 *   - race: the same, but the new producer's init is sent while the owner's EndTxn is in flight; the
 *     read must match the outcome (the owner's commit succeeded: c; it failed: the previous one);
 *   - abort: the owner sends a record and offsets c + 1 but never commits (a kill at `after-offsets`);
 *     a new producer inits (the coordinator aborts the open transaction) and reads: it must see the
 *     previous committed offset, never the pending one.
 * The new owner is connected beforehand, so only InitProducerId and OffsetFetch separate the
 * owner's commit from the read, and its retries (CONCURRENT_TRANSACTIONS while the markers are being
 * written) are short, so that it asks again as early as possible.
 *
 * TAKEOVER_ITERATIONS (default 150; each iteration is three takeovers) sets the length.
 */
import test from 'ava';
import { useKafka } from '@vltava/kafka-local/testing';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { isFencingError, kafkaErrorType } from './kafka/kafkaErrors.js';
import { sendOffsetsWithRetry } from './kafka/sendOffsets.js';

const kafka = useKafka(test);
const ITERATIONS = Number(process.env.TAKEOVER_ITERATIONS ?? 150);

interface Counts {
  /** commit: the read returned the committed offset. */
  fresh: number;
  /** commit: the read returned an earlier offset (the duplicates case). */
  stale: number;
  /** race: the owner's commit won / was fenced, and the read matched. */
  raceCommitted: number;
  raceFenced: number;
  /** race: how the owner's commit failed (a fencing error, or another one). */
  raceFencedBy: { fencing: number; other: number; otherTypes: Map<string, number> };
  /** race: the read did not match the outcome of the owner's commit. */
  raceWrong: number;
  /** abort: the read returned the previous committed offset. */
  abortPrevious: number;
  /** abort: the read returned the pending (aborted) offset, or anything else. */
  abortWrong: number;
  /** Milliseconds from the owner's commit to the new owner's initialised producer. */
  initMs: number[];
  details: string[];
}

function newProducer(client: Kafka, transactionalId: string): Producer {
  return client.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    // Ask again soon after CONCURRENT_TRANSACTIONS: the read then comes as early as it can.
    retry: { initialRetryTime: 5, maxRetryTime: 50, retries: 100 },
  });
}

async function readOffset(admin: Admin, groupId: string, topic: string): Promise<number> {
  const res = await admin.fetchOffsets({ groupId, topics: [topic] });
  const p = res.find((t) => t.topic === topic)?.partitions.find((x) => x.partition === 0);
  return p === undefined ? -1 : Number(p.offset);
}

/** After a wrong read: what the broker says a little later (diagnostics only). */
async function later(admin: Admin, groupId: string, topic: string): Promise<string> {
  const seen: number[] = [];
  for (const ms of [5, 50, 500]) {
    await new Promise((r) => setTimeout(r, ms));
    seen.push(await readOffset(admin, groupId, topic));
  }
  return `then ${seen.join(', ')} after 5/55/555 ms`;
}

test.serial('[broker] a takeover reads the committed offsets right after InitProducerId: never stale after a commit, never the pending ones after a kill at after-offsets', async (t) => {
  t.timeout(600_000);
  const topic = (await kafka().createTopics([{ prefix: 'takeover-in', partitions: 1 }]))[0]!;
  const groupId = kafka().uniqueName('takeover-group');
  const txnId = kafka().uniqueName('takeover-txn');
  const client = kafka().client({ retry: { initialRetryTime: 5, maxRetryTime: 50, retries: 100 } });
  const admin = client.admin();
  await admin.connect();

  const c: Counts = { fresh: 0, stale: 0, raceCommitted: 0, raceFenced: 0, raceFencedBy: { fencing: 0, other: 0, otherTypes: new Map() }, raceWrong: 0, abortPrevious: 0, abortWrong: 0, initMs: [], details: [] };
  let committed = -1; // the group's committed offset as far as the test knows
  let next = 0;
  let owner = newProducer(client, txnId);
  await owner.connect();
  await (await owner.transaction()).abort();

  /** The next owner: connected (kafkajs' connect does not init transactions), not yet initialised. */
  const successor = async (): Promise<Producer> => {
    const p = newProducer(client, txnId);
    await p.connect();
    return p;
  };
  const init = async (p: Producer): Promise<void> => {
    await (await p.transaction()).abort();
  };
  const openTxn = async (p: Producer, offset: number) => {
    const tx = await p.transaction();
    await tx.send({ topic, messages: [{ value: `r${offset}` }] });
    await sendOffsetsWithRetry(tx, { consumerGroupId: groupId, topics: [{ topic, partitions: [{ partition: 0, offset: String(offset) }] }] });
    return tx;
  };
  const handOver = async (old: Producer, p: Producer): Promise<void> => {
    owner = p;
    await old.disconnect().catch(() => undefined);
  };

  try {
    for (let i = 0; i < ITERATIONS; i++) {
      // commit: a kill at after-commit / after-checkpoint, then an immediate takeover.
      {
        const b = await successor();
        const offset = ++next;
        const tx = await openTxn(owner, offset);
        await tx.commit();
        const t0 = Date.now();
        await init(b);
        c.initMs.push(Date.now() - t0);
        const read = await readOffset(admin, groupId, topic);
        committed = offset;
        if (read === offset) c.fresh++;
        else {
          c.stale++;
          c.details.push(`commit #${i}: committed ${offset}, the new owner read ${read}, ${await later(admin, groupId, topic)}`);
        }
        await handOver(owner, b);
      }
      // race: the new owner's InitProducerId goes out while the owner's EndTxn is in flight.
      {
        const b = await successor();
        const offset = ++next;
        const tx = await openTxn(owner, offset);
        const [commit, initialised] = await Promise.allSettled([tx.commit(), init(b)]);
        if (initialised.status === 'rejected') throw initialised.reason;
        const won = commit.status === 'fulfilled';
        // Fenced (INVALID_PRODUCER_EPOCH), or, on 3.9.1, UNKNOWN_SERVER_ERROR when the EndTxn meets the
        // pending epoch fence ("... to PrepareCommit while it already a pending state PrepareEpochFence"):
        // either way the owner's commit failed and the takeover must read the previous offset.
        if (!won && isFencingError(commit.reason)) c.raceFencedBy.fencing++;
        else if (!won) {
          c.raceFencedBy.other++;
          const type = kafkaErrorType(commit.reason) ?? (commit.reason as Error).name;
          c.raceFencedBy.otherTypes.set(type, (c.raceFencedBy.otherTypes.get(type) ?? 0) + 1);
        }
        const read = await readOffset(admin, groupId, topic);
        const expected = won ? offset : committed;
        if (won) committed = offset;
        if (read === expected) won ? c.raceCommitted++ : c.raceFenced++;
        else {
          c.raceWrong++;
          c.details.push(`race #${i}: owner's commit ${won ? 'succeeded' : 'was fenced'}, expected ${expected}, the new owner read ${read}, ${await later(admin, groupId, topic)}`);
        }
        await handOver(owner, b);
      }
      // abort: a kill at after-offsets (offsets sent, no commit), then an immediate takeover.
      {
        const b = await successor();
        const pending = ++next;
        await openTxn(owner, pending); // abandoned: never committed, never aborted by its owner
        const t0 = Date.now();
        await init(b); // the coordinator aborts the open transaction before it answers
        c.initMs.push(Date.now() - t0);
        const read = await readOffset(admin, groupId, topic);
        if (read === committed) c.abortPrevious++;
        else {
          c.abortWrong++;
          c.details.push(`abort #${i}: committed ${committed}, pending ${pending}, the new owner read ${read}, ${await later(admin, groupId, topic)}`);
        }
        await handOver(owner, b);
      }
    }
  } catch (err) {
    const e = err as { name?: string; type?: string; message?: string; cause?: unknown };
    t.log(`unexpected error after ${next} transactions: ${e.name} ${e.type ?? ''} ${e.message}`, e.cause ?? '');
    throw err;
  } finally {
    await owner.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }

  const sorted = [...c.initMs].sort((a, b) => a - b);
  const pct = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  t.log(`broker ${kafka().brokers.join(',')}${process.env.KAFKA_VERSION ? ` (KAFKA_VERSION=${process.env.KAFKA_VERSION})` : ''}, ${ITERATIONS} iterations`);
  t.log(`commit: ${c.fresh} fresh, ${c.stale} stale`);
  t.log(`race:   ${c.raceCommitted} committed + ${c.raceFenced} failed (${c.raceFencedBy.fencing} fenced, ${c.raceFencedBy.other} other errors${c.raceFencedBy.other > 0 ? `: ${[...c.raceFencedBy.otherTypes].map(([k, v]) => `${v} ${k}`).join(', ')}` : ''}) read correctly, ${c.raceWrong} wrong`);
  t.log(`abort:  ${c.abortPrevious} read the previous offset, ${c.abortWrong} wrong`);
  t.log(`init after the owner's commit/abandon: median ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${sorted.at(-1)} ms`);
  for (const d of c.details.slice(0, 20)) t.log(d);

  t.is(c.fresh + c.stale, ITERATIONS);
  t.is(c.stale, 0, 'a takeover read a stale offset after a committed transaction (it would reprocess committed input)');
  t.is(c.raceWrong, 0, "a takeover's read did not match the outcome of the owner's racing commit");
  t.is(c.abortWrong, 0, 'a takeover read the offsets of an aborted transaction');
});
