import kafkajs from 'kafkajs';
import { applicationId, brokers, integer, parse } from './args.js';
import { groupOffsets, groupState, internalTopics, topicOffsets, withAdmin } from './admin.js';
import type { Io } from './io.js';

export const TOPICS_HELP = `Usage: vltava topics --application-id <id> --brokers <host:port,...> [--json] [--timeout-ms <ms>]

Shows the application's internal topics (<id>-*-repartition, <id>-*-changelog) with their
partitions, cleanup.policy, retention.ms and end offsets, and the consumer group <id>: its state,
members, and committed offset and lag per partition of every topic it reads.
`;

export interface TopicReport {
  readonly name: string;
  readonly kind: 'repartition' | 'changelog';
  readonly partitions: number;
  readonly cleanupPolicy: string | undefined;
  readonly retentionMs: string | undefined;
  readonly endOffsets: Record<number, number>;
  readonly startOffsets: Record<number, number>;
}

export interface GroupOffsetReport {
  readonly topic: string;
  readonly partition: number;
  readonly committed: number;
  readonly end: number;
  readonly lag: number;
}

export interface TopicsReport {
  readonly applicationId: string;
  readonly group: { readonly state: string; readonly members: readonly { readonly clientId: string; readonly clientHost: string }[] };
  readonly internalTopics: readonly TopicReport[];
  readonly offsets: readonly GroupOffsetReport[];
}

export async function topics(argv: readonly string[], io: Io): Promise<number> {
  const { values } = parse(
    'topics',
    argv,
    { 'application-id': { type: 'string' }, brokers: { type: 'string' }, json: { type: 'boolean' }, 'timeout-ms': { type: 'string' } },
    { min: 0, max: 0, names: 'no positional arguments' },
  );
  if (values.help === true) {
    io.out(TOPICS_HELP);
    return 0;
  }
  const appId = applicationId('topics', values);
  const bootstrap = brokers('topics', values);
  const timeoutMs = integer('topics', values, 'timeout-ms', 1) ?? 30_000;
  const report = await withAdmin({ brokers: bootstrap, timeoutMs }, async (admin): Promise<TopicsReport> => {
    const names = await internalTopics(admin, appId);
    const metadata = names.length === 0 ? { topics: [] } : await admin.fetchTopicMetadata({ topics: names });
    const configs =
      names.length === 0
        ? { resources: [] }
        : await admin.describeConfigs({
            includeSynonyms: false,
            resources: names.map((name) => ({ type: kafkajs.ConfigResourceTypes.TOPIC, name, configNames: ['cleanup.policy', 'retention.ms'] })),
          });
    const internal: TopicReport[] = [];
    for (const name of names) {
      const ranges = await topicOffsets(admin, name);
      const entries = configs.resources.find((r) => r.resourceName === name)?.configEntries ?? [];
      internal.push({
        name,
        kind: name.endsWith('-repartition') ? 'repartition' : 'changelog',
        partitions: metadata.topics.find((t) => t.name === name)?.partitions.length ?? ranges.length,
        cleanupPolicy: entries.find((e) => e.configName === 'cleanup.policy')?.configValue,
        retentionMs: entries.find((e) => e.configName === 'retention.ms')?.configValue,
        endOffsets: Object.fromEntries(ranges.map((r) => [r.partition, r.high])),
        startOffsets: Object.fromEntries(ranges.map((r) => [r.partition, r.low])),
      });
    }
    const group = await groupState(admin, appId);
    const committed = await groupOffsets(admin, appId);
    const offsets: GroupOffsetReport[] = [];
    for (const [topic, parts] of [...committed].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const ends = new Map((await topicOffsets(admin, topic).catch(() => [])).map((r) => [r.partition, r.high]));
      for (const [partition, offset] of [...parts].sort(([a], [b]) => a - b)) {
        const end = ends.get(partition) ?? -1;
        offsets.push({ topic, partition, committed: offset, end, lag: offset < 0 ? end : Math.max(0, end - offset) });
      }
    }
    return { applicationId: appId, group: { state: group.state, members: group.members.map((m) => ({ clientId: m.clientId, clientHost: m.clientHost })) }, internalTopics: internal, offsets };
  });
  if (values.json === true) {
    io.out(JSON.stringify(report, null, 2));
    return 0;
  }
  io.out(`Application "${appId}" on ${bootstrap.join(',')}`);
  io.out(`Consumer group: ${report.group.state}, ${report.group.members.length} member(s)${report.group.members.map((m) => `\n  ${m.clientId}@${m.clientHost}`).join('')}`);
  io.out('');
  io.out(report.internalTopics.length === 0 ? `Internal topics: none (${appId}-*-repartition / ${appId}-*-changelog)` : 'Internal topics:');
  if (report.internalTopics.length > 0) {
    io.out(table(['topic', 'kind', 'partitions', 'cleanup.policy', 'retention.ms', 'end offsets'], report.internalTopics.map((t) => [t.name, t.kind, String(t.partitions), t.cleanupPolicy ?? '?', t.retentionMs ?? '?', Object.entries(t.endOffsets).map(([p, o]) => `${p}:${o}`).join(' ')])));
  }
  io.out('');
  io.out(report.offsets.length === 0 ? 'Committed offsets: none' : 'Committed offsets:');
  if (report.offsets.length > 0) {
    io.out(table(['topic', 'partition', 'committed', 'end', 'lag'], report.offsets.map((o) => [o.topic, String(o.partition), o.committed < 0 ? '-' : String(o.committed), String(o.end), String(o.lag)])));
    io.out(`Total lag: ${report.offsets.reduce((s, o) => s + o.lag, 0)}`);
  }
  return 0;
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => '  ' + cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
