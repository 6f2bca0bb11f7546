/**
 * Before any processing: check the user's topics, work out partition counts, and create or validate
 * the internal topics (repartition: delete policy; changelog: compact). Every problem is a
 * ConfigError that says what to do, raised before a single record is read.
 */
import { ConfigError, topicName, type Topology } from '@vltava/dsl';
import type { Admin } from 'kafkajs';
import { taskIdOf } from '@vltava/executor';
import type { TaskRef } from './taskAssignor.js';

export interface TopicLayout {
  /** Tasks of every sub-topology, with their input partitions. */
  readonly tasks: TaskRef[];
  /** Partition count per topic the app reads or writes (full names). */
  readonly partitions: ReadonlyMap<string, number>;
  /** Source topics to subscribe to (user and repartition topics). */
  readonly sourceTopics: string[];
  /** Task count per sub-topology. */
  readonly taskCounts: readonly number[];
  /** The repartition topics (full names): purged below the committed offsets. */
  readonly repartitionTopics: ReadonlySet<string>;
  /** Every topic the app writes: output and dead-letter topics, repartition and changelog topics. */
  readonly writtenTopics: readonly string[];
}

/**
 * Repartition topics keep every record until the app has read it (Kafka Streams, KIP-284): time
 * retention is judged on record timestamps, so a backfill of old events, or a consumer that falls
 * behind, would otherwise lose records before they are read. The app deletes what it has committed
 * (KafkaStreams' repartition purge) instead.
 */
const REPARTITION_CONFIG: Readonly<Record<string, string>> = { 'cleanup.policy': 'delete', 'retention.ms': '-1' };

async function existingPartitions(admin: Admin, topics: readonly string[]): Promise<Map<string, number>> {
  const existing = new Set(await admin.listTopics());
  const present = topics.filter((t) => existing.has(t));
  const out = new Map<string, number>();
  if (present.length === 0) return out;
  const meta = await admin.fetchTopicMetadata({ topics: present });
  for (const t of meta.topics) out.set(t.name, t.partitions.length);
  return out;
}

/** Creates missing internal topics and checks everything else; returns the task layout. */
export async function prepareTopics(
  admin: Admin,
  topology: Topology,
  applicationId: string,
  opts: { replicationFactor: number; extraSinkTopics?: readonly string[]; warn?: (message: string) => void },
): Promise<TopicLayout> {
  const internal = topology.internalTopics(applicationId);
  const userSources = [...new Set(topology.sourceTopics())];
  const userSinks = [...new Set([...topology.sinkTopics(), ...(opts.extraSinkTopics ?? [])])];
  const known = await existingPartitions(admin, [...new Set([...userSources, ...userSinks, ...internal.map((t) => t.name)])]);

  const globalTopics = topology.globalTopics();
  for (const [name, n] of await existingPartitions(admin, globalTopics)) known.set(name, n);
  const missingSources = [...userSources, ...globalTopics].filter((t) => !known.has(t));
  if (missingSources.length > 0) {
    throw new ConfigError(
      `Source topic(s) ${missingSources.map((t) => `"${t}"`).join(', ')} do not exist. Create them before starting the app ` +
        `(e.g. kafka-topics.sh --create --topic ${missingSources[0]} --partitions N), or fix the topic names in the topology. ` +
        `If they exist, the credentials may not see them: on a cluster with ACLs, grant Read on them (docs/security.md).`,
    );
  }
  const missingSinks = userSinks.filter((t) => !known.has(t));
  if (missingSinks.length > 0) {
    throw new ConfigError(
      `Output topic(s) ${missingSinks.map((t) => `"${t}"`).join(', ')} do not exist. Create them before starting the app; Vltava creates only its internal topics. ` +
        `If they exist, the credentials may not see them: on a cluster with ACLs, grant Write and DescribeConfigs on them (docs/security.md).`,
    );
  }

  // Partition counts of every source and internal topic, derived from the user topics alone
  // (Topology.partitionPlan also checks co-partitioning); existing internal topics must match them.
  const userCounts = new Map([...known].filter(([name]) => !internal.some((t) => t.name === name)));
  const plan = topology.partitionPlan(applicationId, (topic) => userCounts.get(topic));
  const taskCounts = plan.tasks;
  const partitions = new Map<string, number>([...known, ...plan.topics]);

  const toCreate: { topic: string; numPartitions: number; replicationFactor: number; configEntries: { name: string; value: string }[] }[] = [];
  const existingRepartition: string[] = [];
  for (const t of internal) {
    const want = plan.topics.get(t.name);
    if (want === undefined || want === 0) {
      throw new ConfigError(`Cannot work out the partition count of internal topic "${t.name}": give the operator an explicit partitions option.`);
    }
    const have = known.get(t.name);
    if (have === undefined) {
      toCreate.push({
        topic: t.name,
        numPartitions: want,
        replicationFactor: opts.replicationFactor,
        configEntries: Object.entries(t.kind === 'repartition' ? { ...t.config, ...REPARTITION_CONFIG } : t.config).map(([name, value]) => ({ name, value })),
      });
    } else if (t.kind === 'repartition') existingRepartition.push(t.name);
    if (have !== undefined && have !== want) {
      throw new ConfigError(
        `Internal topic "${t.name}" has ${have} partitions but the app needs ${want}. The input topics changed size: reset the application (docs/runtime.md, "Resetting an application") so that its internal topics are recreated.`,
      );
    }
  }
  if (toCreate.length > 0) {
    await admin.createTopics({ topics: toCreate, waitForLeaders: false });
    await awaitLeaders(admin, toCreate.map((t) => t.topic));
  }
  if (existingRepartition.length > 0) await checkRepartitionRetention(admin, existingRepartition, opts.warn);

  const tasks: TaskRef[] = [];
  topology.subtopologies.forEach((s, i) => {
    for (let p = 0; p < taskCounts[i]!; p++) {
      tasks.push({
        id: taskIdOf(s.id, p),
        partitions: s.sources.map((t) => topicName(t, applicationId)).filter((name) => p < (partitions.get(name) ?? 0)).map((topic) => ({ topic, partition: p })),
      });
    }
  });
  const sourceTopics = [...new Set(topology.subtopologies.flatMap((s) => s.sources.map((t) => topicName(t, applicationId))))];
  const repartitionTopics = new Set(internal.filter((t) => t.kind === 'repartition').map((t) => t.name));
  const writtenTopics = [...new Set([...userSinks, ...internal.map((t) => t.name)])];
  return { tasks, partitions, sourceTopics, taskCounts, repartitionTopics, writtenTopics };
}

/** Existing repartition topics created with time retention (by an older Vltava, or by hand) are reported. */
async function checkRepartitionRetention(admin: Admin, topics: readonly string[], warn: ((message: string) => void) | undefined): Promise<void> {
  const described = await admin.describeConfigs({
    resources: topics.map((name) => ({ type: 2 /* TOPIC */, name, configNames: ['retention.ms'] })),
    includeSynonyms: false,
  });
  for (const r of described.resources) {
    const retention = r.configEntries.find((e) => e.configName === 'retention.ms')?.configValue;
    if (retention !== undefined && retention !== '-1') {
      warn?.(
        `repartition topic ${r.resourceName} has retention.ms=${retention}: records older than that (by timestamp) can be deleted before the app reads them. ` +
          `Set it to -1: kafka-configs.sh --alter --entity-type topics --entity-name ${r.resourceName} --add-config retention.ms=-1 (the app purges what it has read).`,
      );
    }
  }
}

/** kafkajs' own waitForLeaders does not retry UNKNOWN_TOPIC_OR_PARTITION, which KRaft brokers answer at first. */
async function awaitLeaders(admin: Admin, topics: readonly string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let backoff = 20;
  for (;;) {
    try {
      const meta = await admin.fetchTopicMetadata({ topics: [...topics] });
      if (meta.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
    } catch (e) {
      const type = (e as { type?: string }).type;
      if (type !== 'UNKNOWN_TOPIC_OR_PARTITION' && type !== 'LEADER_NOT_AVAILABLE') throw e;
    }
    if (Date.now() > deadline) throw new ConfigError(`Internal topics ${topics.join(', ')} were created but have no leaders after ${timeoutMs} ms: is the cluster healthy?`);
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 500);
  }
}
