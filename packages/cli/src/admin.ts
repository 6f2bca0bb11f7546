import kafkajs, { type Admin, type Kafka } from 'kafkajs';
import { CliError } from './errors.js';

export interface AdminOptions {
  readonly brokers: readonly string[];
  /** The whole command gives up after this long (default 30 s). */
  readonly timeoutMs: number;
}

/**
 * Runs `fn` with a connected kafkajs admin client. Every step is bounded: the connection, each
 * request and the retries, and the whole command (`timeoutMs`), so an unreachable broker ends the
 * command with a message instead of kafkajs' minute of retries.
 */
export async function withAdmin<T>(opts: AdminOptions, fn: (admin: Admin, kafka: Kafka) => Promise<T>): Promise<T> {
  const kafka = new kafkajs.Kafka({
    clientId: 'vltava-cli',
    brokers: [...opts.brokers],
    logLevel: kafkajs.logLevel.NOTHING,
    connectionTimeout: Math.min(5_000, opts.timeoutMs),
    requestTimeout: Math.min(15_000, opts.timeoutMs),
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2_000 },
  });
  const admin = kafka.admin();
  let timer: NodeJS.Timeout | undefined;
  let connected = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new CliError(
            connected
              ? `timed out after ${opts.timeoutMs} ms talking to ${opts.brokers.join(',')} (raise --timeout-ms if the cluster is slow)`
              : `could not reach the brokers ${opts.brokers.join(',')} within ${opts.timeoutMs} ms: check --brokers and that Kafka is running`,
          ),
        ),
      opts.timeoutMs,
    );
  });
  try {
    const work = (async () => {
      try {
        await admin.connect();
      } catch (err) {
        throw new CliError(`could not reach the brokers ${opts.brokers.join(',')}: ${(err as Error).message}. Check --brokers and that Kafka is running`);
      }
      connected = true;
      return fn(admin, kafka);
    })();
    work.catch(() => undefined);
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
    await Promise.race([admin.disconnect().catch(() => undefined), new Promise((r) => setTimeout(r, 2_000).unref())]);
  }
}

export interface PartitionOffsets {
  readonly partition: number;
  readonly low: number;
  readonly high: number;
}

export async function topicOffsets(admin: Admin, topic: string): Promise<PartitionOffsets[]> {
  const res = await admin.fetchTopicOffsets(topic);
  return res.map((p) => ({ partition: p.partition, low: Number(p.low), high: Number(p.high) })).sort((a, b) => a.partition - b.partition);
}

/** The group's committed offset per topic and partition (-1: none). */
export async function groupOffsets(admin: Admin, groupId: string, topics?: readonly string[]): Promise<Map<string, Map<number, number>>> {
  const res = await admin.fetchOffsets({ groupId, ...(topics ? { topics: [...topics] } : {}) });
  const out = new Map<string, Map<number, number>>();
  for (const t of res) out.set(t.topic, new Map(t.partitions.map((p) => [p.partition, Number(p.offset)])));
  return out;
}

/** Internal topics of `applicationId`: `<appId>-*-repartition` and `<appId>-*-changelog`. */
export function isInternalTopic(applicationId: string, topic: string): boolean {
  if (!topic.startsWith(`${applicationId}-`)) return false;
  const rest = topic.slice(applicationId.length + 1);
  const suffix = ['-repartition', '-changelog'].find((s) => rest.endsWith(s));
  return suffix !== undefined && rest.length > suffix.length;
}

/**
 * The internal topics of `applicationId`, found by name. Topics of another application whose id
 * extends this one (`<appId>-x`, with a consumer group of that name) match the pattern too; they
 * are left out, and listed in `others`.
 */
export async function internalTopics(admin: Admin, applicationId: string): Promise<string[] & { others?: string[] }> {
  const candidates = (await admin.listTopics()).filter((t) => isInternalTopic(applicationId, t)).sort();
  if (candidates.length === 0) return candidates;
  const longer = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`${applicationId}-`));
  const ours: string[] & { others?: string[] } = [];
  const others: string[] = [];
  for (const t of candidates) (longer.some((g) => isInternalTopic(g, t)) ? others : ours).push(t);
  if (others.length > 0) ours.others = others;
  return ours;
}

export interface GroupState {
  readonly state: string;
  readonly members: readonly { readonly memberId: string; readonly clientId: string; readonly clientHost: string }[];
}

export async function groupState(admin: Admin, groupId: string): Promise<GroupState> {
  const { groups } = await admin.describeGroups([groupId]);
  const g = groups[0];
  if (g === undefined) return { state: 'Dead', members: [] };
  return { state: g.state, members: g.members.map((m) => ({ memberId: m.memberId, clientId: m.clientId, clientHost: m.clientHost })) };
}
