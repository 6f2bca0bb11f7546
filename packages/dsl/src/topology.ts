/**
 * An immutable, compiled topology: sub-topologies split at repartition topics, their nodes in
 * processing order, stores, internal topics and co-partitioning groups.
 */
import { match } from 'ts-pattern';
import { ConfigError, TopologyError } from './errors.js';
import type { GlobalTableDef, InternalBuilder, NodeDef, RepartitionTopicDef, TopicRef } from './graph.js';
import type { StoreSpec } from './stores.js';

export type TopologyNode = NodeDef & { readonly children: readonly string[]; readonly subtopology: number };

export interface Subtopology {
  readonly id: number;
  /** Nodes in creation order: every node comes after its parents. */
  readonly nodes: readonly TopologyNode[];
  readonly sources: readonly TopicRef[];
  readonly sinks: readonly TopicRef[];
  readonly stores: readonly string[];
}

export interface InternalTopic {
  /** Full topic name, with the `<appId>-` prefix. */
  readonly name: string;
  readonly kind: 'repartition' | 'changelog';
  /** Fixed partition count; undefined: derived from the input topics (repartition) or the task count (changelog). */
  readonly partitions: number | undefined;
  readonly config: Readonly<Record<string, string>>;
}

/** Resolves a topic reference to the topic name used on the broker. */
export function topicName(ref: TopicRef, applicationId: string): string {
  return ref.internal ? `${applicationId}-${ref.name}` : ref.name;
}

/** How many tasks each sub-topology has and how many partitions each topic needs. */
export interface PartitionPlan {
  /** Tasks (= partitions of its input topics) per sub-topology, indexed by sub-topology id. */
  readonly tasks: readonly number[];
  /** Partition count of every source, repartition and changelog topic, by full name. */
  readonly topics: ReadonlyMap<string, number>;
}

export class Topology {
  readonly subtopologies: readonly Subtopology[];
  readonly stores: ReadonlyMap<string, StoreSpec>;
  readonly repartitionTopics: readonly RepartitionTopicDef[];
  /** Groups of source topics that must have equal partition counts (joins). */
  readonly copartitionGroups: readonly (readonly TopicRef[])[];
  /**
   * Global tables: each instance reads every partition of `topic` (outside the consumer group, from
   * the beginning, then continuously) into the key-value store `name`. Not part of any sub-topology.
   */
  readonly globalTables: readonly GlobalTableDef[];
  private readonly nodesByName: ReadonlyMap<string, TopologyNode>;

  /** @internal Use `StreamsBuilder.build()`. */
  constructor(builder: InternalBuilder) {
    const defs = builder.nodes.slice();
    if (defs.length === 0) {
      throw new TopologyError('The topology is empty. Add at least one builder.stream(...) or builder.table(...) before build().');
    }
    const index = new Map(defs.map((d, i) => [d.name, i]));
    // Union-find: nodes joined by an edge or by a shared store run in the same sub-topology.
    const parent = defs.map((_, i) => i);
    const find = (i: number): number => {
      while (parent[i] !== i) i = parent[i] = parent[parent[i]!]!;
      return i;
    };
    const union = (a: number, b: number): void => {
      const ra = find(a);
      const rb = find(b);
      if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
    };
    const children = new Map<string, string[]>(defs.map((d) => [d.name, []]));
    const storeOwner = new Map<string, number>();
    defs.forEach((d, i) => {
      for (const p of d.parents) {
        union(i, index.get(p)!);
        children.get(p)!.push(d.name);
      }
      if (d.kind === 'processor') {
        for (const s of d.stores) {
          if (builder.globalTables.has(s)) continue; // global stores live outside every task
          if (!builder.stores.has(s)) {
            throw new TopologyError(
              `Processor "${d.name}" uses store "${s}", which is not defined. Add it with builder.addStateStore(Stores.keyValueStore({ name: '${s}' })) before build().`,
            );
          }
          const owner = storeOwner.get(s);
          if (owner === undefined) storeOwner.set(s, i);
          else union(i, owner);
        }
      }
    });
    for (const s of builder.stores.keys()) {
      if (!storeOwner.has(s)) {
        throw new TopologyError(`Store "${s}" is not used by any processor. Pass it in process(supplier, { stores: ['${s}'] }) or remove it.`);
      }
    }
    const rootToId = new Map<number, number>();
    const subNodes: TopologyNode[][] = [];
    const nodes: TopologyNode[] = [];
    defs.forEach((d, i) => {
      const root = find(i);
      let id = rootToId.get(root);
      if (id === undefined) {
        id = subNodes.length;
        rootToId.set(root, id);
        subNodes.push([]);
      }
      const node: TopologyNode = Object.freeze({ ...d, children: Object.freeze(children.get(d.name)!), subtopology: id });
      subNodes[id]!.push(node);
      nodes.push(node);
    });
    this.subtopologies = Object.freeze(
      subNodes.map((ns, id) => {
        const sources: TopicRef[] = [];
        const sinks: TopicRef[] = [];
        const stores = new Set<string>();
        for (const n of ns) {
          match(n)
            .with({ kind: 'source' }, (s) => void sources.push(s.topic))
            .with({ kind: 'sink' }, (s) => void sinks.push(s.topic))
            .with({ kind: 'processor' }, (p) => p.stores.forEach((s) => builder.globalTables.has(s) || stores.add(s)))
            .exhaustive();
        }
        if (sources.length === 0) {
          throw new TopologyError(`Sub-topology ${id} has no source. Every processor must descend from builder.stream(...) or builder.table(...).`);
        }
        return Object.freeze({ id, nodes: Object.freeze(ns), sources: Object.freeze(sources), sinks: Object.freeze(sinks), stores: Object.freeze([...stores]) });
      }),
    );
    this.stores = new Map(builder.stores);
    this.globalTables = Object.freeze([...builder.globalTables.values()]);
    this.repartitionTopics = Object.freeze([...builder.repartitionTopics.values()]);
    this.copartitionGroups = Object.freeze(builder.copartitionGroups.map((g) => Object.freeze(g.slice())));
    this.nodesByName = new Map(nodes.map((n) => [n.name, n]));
    Object.freeze(this);
  }

  node(name: string): TopologyNode | undefined {
    return this.nodesByName.get(name);
  }

  /** The specs of the stores of one sub-topology: what `openTaskStores` needs for its tasks. */
  storeSpecs(subtopology: number): StoreSpec[] {
    const sub = this.subtopologies[subtopology];
    if (sub === undefined) throw new TopologyError(`Sub-topology ${subtopology} does not exist; the topology has ${this.subtopologies.length}.`);
    return sub.stores.map((s) => this.stores.get(s)!);
  }

  /** The specs of the global stores (not change-logged: the topic is their changelog). */
  globalStoreSpecs(): StoreSpec[] {
    return this.globalTables.map((g) => ({ name: g.name, kind: 'keyValue' as const, keySerde: g.keySerde, valueSerde: g.valueSerde, logging: false, caching: false }));
  }

  /** Topics read by global tables (every partition, by every instance). */
  globalTopics(): string[] {
    return this.globalTables.map((g) => g.topic);
  }

  /** The user (non-internal) topics the topology reads (through the consumer group; see globalTopics()). */
  sourceTopics(): string[] {
    return this.subtopologies.flatMap((s) => s.sources.filter((t) => !t.internal).map((t) => t.name));
  }

  /** The user (non-internal) topics the topology writes. */
  sinkTopics(): string[] {
    return [...new Set(this.subtopologies.flatMap((s) => s.sinks.filter((t) => !t.internal).map((t) => t.name)))];
  }

  /** The sub-topology that reads `topic` (full name, with the prefix for internal topics). */
  subtopologyFor(topic: string, applicationId: string): Subtopology | undefined {
    return this.subtopologies.find((s) => s.sources.some((t) => topicName(t, applicationId) === topic));
  }

  /** Repartition and changelog topics, with their full names for `applicationId`. */
  internalTopics(applicationId: string): InternalTopic[] {
    const out: InternalTopic[] = this.repartitionTopics.map((r) => ({
      name: `${applicationId}-${r.name}`,
      kind: 'repartition' as const,
      partitions: r.partitions,
      config: { 'cleanup.policy': 'delete' },
    }));
    for (const spec of this.stores.values()) {
      if (!spec.logging) continue;
      out.push({
        name: `${applicationId}-${spec.name}-changelog`,
        kind: 'changelog',
        partitions: undefined,
        // Windowed changelogs also expire by time: the store's retention plus a day (Kafka Streams' default
        // windowstore.changelog.additional.retention.ms), so a restore never misses a live window.
        config:
          spec.kind === 'keyValue'
            ? { 'cleanup.policy': 'compact', ...spec.changelogConfig }
            : { 'cleanup.policy': 'compact,delete', 'retention.ms': String((spec.retentionMs ?? 0) + 86_400_000), ...spec.changelogConfig },
      });
    }
    return out;
  }

  /**
   * Resolves partition counts as Kafka Streams does: a sub-topology has as many tasks as its
   * input topics have partitions (the maximum); a repartition topic has its own
   * `numberOfPartitions` or as many as the tasks of the sub-topology writing it; a changelog
   * topic as many as the tasks owning the store. `partitionsOf(topic)` gives the count of user
   * topics (and may override internal ones); it returns undefined for unknown topics.
   * Throws a TopologyError if co-partitioned topics differ, a ConfigError if a user topic is unknown.
   * A repartition topic without a fixed count that is co-partitioned with other topics takes their count.
   */
  partitionPlan(applicationId: string, partitionsOf: (topic: string) => number | undefined): PartitionPlan {
    const subs = this.subtopologies;
    const repartitionDefs = new Map(this.repartitionTopics.map((r) => [`${applicationId}-${r.name}`, r]));
    const memo = new Map<number, number>();
    const visiting = new Set<number>();
    const visitingTopics = new Set<string>();
    const copartitionPeers = new Map<string, string[]>();
    for (const group of this.copartitionGroups) {
      const names = group.map((t) => topicName(t, applicationId));
      for (const n of names) copartitionPeers.set(n, [...(copartitionPeers.get(n) ?? []), ...names.filter((x) => x !== n)]);
    }
    const topicPartitions = (name: string): number => {
      const given = partitionsOf(name);
      if (given !== undefined) return given;
      const r = repartitionDefs.get(name);
      if (r === undefined) {
        throw new ConfigError(`The partition count of topic "${name}" is unknown: create the topic before starting the application.`);
      }
      if (r.partitions !== undefined) return r.partitions;
      // A repartition topic joined with other topics takes their partition count (as Kafka Streams'
      // co-partitioning enforcer does), so a re-keyed side meets the other side's partitions.
      const peers = copartitionPeers.get(name);
      if (peers !== undefined && !visitingTopics.has(name)) {
        visitingTopics.add(name);
        try {
          for (const peer of peers) {
            const pr = repartitionDefs.get(peer);
            if (pr !== undefined && pr.partitions === undefined) continue;
            return topicPartitions(peer);
          }
        } finally {
          visitingTopics.delete(name);
        }
      }
      const writer = subs.find((s) => s.sinks.some((t) => topicName(t, applicationId) === name));
      if (writer === undefined || visiting.has(writer.id)) {
        throw new ConfigError(`Cannot derive the partition count of "${name}"; set numberOfPartitions on repartition({ name, numberOfPartitions }).`);
      }
      return subTasks(writer.id);
    };
    const subTasks = (id: number): number => {
      const known = memo.get(id);
      if (known !== undefined) return known;
      visiting.add(id);
      const n = Math.max(...subs[id]!.sources.map((t) => topicPartitions(topicName(t, applicationId))));
      visiting.delete(id);
      memo.set(id, n);
      return n;
    };
    const topics = new Map<string, number>();
    const tasks = subs.map((sub) => {
      for (const t of sub.sources) topics.set(topicName(t, applicationId), topicPartitions(topicName(t, applicationId)));
      return subTasks(sub.id);
    });
    subs.forEach((sub) => {
      for (const store of sub.stores) {
        const changelog = `${applicationId}-${store}-changelog`;
        if (this.stores.get(store)!.logging) topics.set(changelog, partitionsOf(changelog) ?? tasks[sub.id]!);
      }
    });
    for (const group of this.copartitionGroups) {
      const names = group.map((t) => topicName(t, applicationId));
      if (new Set(names.map((n) => topics.get(n))).size > 1) {
        throw new TopologyError(
          `Topics that are joined must be co-partitioned (equal partition counts), but got ${names.map((n) => `${n}=${topics.get(n)}`).join(', ')}. ` +
            'Give them equal partition counts, or repartition one side first with repartition({ name, numberOfPartitions }) so that records with equal keys meet in the same task.',
        );
      }
    }
    return { tasks, topics };
  }

  describe(): TopologyDescription {
    return new TopologyDescription(this);
  }
}

const topicLabel = (t: TopicRef): string => (t.internal ? `<appId>-${t.name}` : t.name);

/** A printable view of a Topology: `toString()` for text, `toMermaid()` for a Mermaid flowchart. */
export class TopologyDescription {
  constructor(private readonly topology: Topology) {}

  /** `console.log(topology.describe())` prints the text form. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  toString(): string {
    const lines: string[] = ['Topologies:'];
    for (const g of this.topology.globalTables) lines.push(`   Global table: ${g.name} (topic: ${g.topic})`);
    for (const sub of this.topology.subtopologies) {
      lines.push(`   Sub-topology: ${sub.id}`);
      for (const n of sub.nodes) {
        const head = match(n)
          .with({ kind: 'source' }, (s) => `Source: ${s.name} (topics: [${topicLabel(s.topic)}])`)
          .with({ kind: 'processor' }, (p) => `Processor: ${p.name} (${p.operator}; stores: [${p.stores.join(', ')}])`)
          .with({ kind: 'sink' }, (s) => `Sink: ${s.name} (topic: ${topicLabel(s.topic)})`)
          .exhaustive();
        lines.push(`    ${head}`);
        lines.push(`      --> ${n.children.length ? n.children.join(', ') : 'none'}`);
        lines.push(`      <-- ${n.parents.length ? n.parents.join(', ') : 'none'}`);
      }
    }
    return lines.join('\n') + '\n';
  }

  toMermaid(): string {
    const ids = new Map<string, string>();
    const id = (key: string): string => {
      let v = ids.get(key);
      if (v === undefined) ids.set(key, (v = `n${ids.size}`));
      return v;
    };
    const esc = (s: string): string => s.replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
    const lines: string[] = ['flowchart TD'];
    const topics = new Set<string>();
    const edges: string[] = [];
    for (const sub of this.topology.subtopologies) {
      lines.push(`  subgraph sub${sub.id}["Sub-topology ${sub.id}"]`);
      for (const n of sub.nodes) {
        const label = match(n)
          .with({ kind: 'source' }, (s) => `source: ${s.name}`)
          .with({ kind: 'processor' }, (p) => `${p.operator}: ${p.name}`)
          .with({ kind: 'sink' }, (s) => `sink: ${s.name}`)
          .exhaustive();
        lines.push(`    ${id(n.name)}["${esc(label)}"]`);
        if (n.kind === 'processor') {
          for (const s of n.stores) {
            if (!this.topology.globalTables.some((g) => g.name === s)) lines.push(`    ${id(`store:${s}`)}[("store: ${esc(s)}")]`);
            edges.push(`  ${id(n.name)} -.- ${id(`store:${s}`)}`);
          }
        }
        for (const c of n.children) edges.push(`  ${id(n.name)} --> ${id(c)}`);
        if (n.kind === 'source') {
          topics.add(topicLabel(n.topic));
          edges.push(`  ${id(`topic:${topicLabel(n.topic)}`)} --> ${id(n.name)}`);
        }
        if (n.kind === 'sink') {
          topics.add(topicLabel(n.topic));
          edges.push(`  ${id(n.name)} --> ${id(`topic:${topicLabel(n.topic)}`)}`);
        }
      }
      lines.push('  end');
    }
    for (const g of this.topology.globalTables) {
      topics.add(g.topic);
      lines.push(`  ${id(`store:${g.name}`)}[("global store: ${esc(g.name)}")]`);
      edges.push(`  ${id(`topic:${g.topic}`)} -.-> ${id(`store:${g.name}`)}`);
    }
    for (const t of topics) lines.push(`  ${id(`topic:${t}`)}[/"topic: ${esc(t)}"/]`);
    return [...lines, ...edges].join('\n') + '\n';
  }
}
