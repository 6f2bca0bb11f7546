/** Consumer-group offsets versus topic ends, for verifying that a pipeline has caught up. */
import type { Admin } from 'kafkajs';

/** The committed offset of `groupId` per partition of `topic` (-1: none committed). */
export async function committedOffsets(admin: Admin, groupId: string, topic: string): Promise<Map<number, number>> {
  const res = await admin.fetchOffsets({ groupId, topics: [topic] });
  return new Map((res[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
}

/** The high watermark per partition. */
export async function endOffsets(admin: Admin, topic: string): Promise<Map<number, number>> {
  const res = await admin.fetchTopicOffsets(topic);
  return new Map(res.map((p) => [p.partition, Number(p.high)]));
}

/**
 * Polls until the group has committed up to the end of every partition of `topic`
 * (ends read once, at the call), or fails after `timeoutMs`.
 */
export async function awaitCaughtUp(admin: Admin, groupId: string, topic: string, timeoutMs = 60_000, pollMs = 200): Promise<void> {
  const ends = await endOffsets(admin, topic);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // A coordinator that is loading or moving (e.g. right after a broker restart) answers with a
    // retriable error: keep polling.
    const committed = await committedOffsets(admin, groupId, topic).catch((e: unknown) => {
      if ((e as { retriable?: boolean }).retriable === true && Date.now() < deadline) return new Map<number, number>();
      throw e;
    });
    const behind = [...ends].filter(([p, end]) => (committed.get(p) ?? -1) < end);
    if (behind.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`group ${groupId} did not catch up on ${topic} within ${timeoutMs} ms: behind on ${behind.map(([p, e]) => `p${p} (${committed.get(p)}/${e})`).join(', ')}`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
