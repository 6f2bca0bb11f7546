/**
 * Creating topics and waiting until every partition has a leader that the broker reports.
 *
 * kafkajs' `createTopics({ waitForLeaders: true })` retries only LEADER_NOT_AVAILABLE, but a KRaft
 * broker answers UNKNOWN_TOPIC_OR_PARTITION until the new topic has reached its metadata cache, so
 * under load that call fails (observed in CI). This polls metadata itself instead.
 */
import type { Admin, ITopicConfig } from 'kafkajs';

const NOT_YET = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION', 'NOT_LEADER_OR_FOLLOWER']);

function errorType(e: unknown): string | undefined {
  const t = (e as { type?: unknown } | null)?.type;
  return typeof t === 'string' ? t : undefined;
}

/** Polls until each topic exists with `partitions` partitions, all with a leader. */
export async function awaitTopicsReady(admin: Admin, topics: readonly { topic: string; numPartitions?: number }[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let backoff = 20;
  for (;;) {
    let lastProblem = '';
    try {
      const meta = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.topic) });
      const notReady = topics.filter((want) => {
        const got = meta.topics.find((m) => m.name === want.topic);
        return !got || got.partitions.length < (want.numPartitions ?? 1) || got.partitions.some((p) => p.leader < 0);
      });
      if (notReady.length === 0) return;
      lastProblem = `not ready: ${notReady.map((t) => t.topic).join(', ')}`;
    } catch (e) {
      if (!NOT_YET.has(errorType(e) ?? '')) throw e;
      lastProblem = errorType(e)!;
    }
    if (Date.now() > deadline) throw new Error(`Topics were not ready within ${timeoutMs} ms (${lastProblem}).`);
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 500);
  }
}

/** createTopics, then awaitTopicsReady. */
export async function createTopicsAndWait(admin: Admin, topics: readonly ITopicConfig[], timeoutMs = 30_000): Promise<void> {
  await admin.createTopics({ topics: [...topics], waitForLeaders: false });
  await awaitTopicsReady(admin, topics, timeoutMs);
}
