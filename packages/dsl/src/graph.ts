/**
 * The logical graph that DSL calls build, and the node definitions a compiled Topology holds.
 * Internal to the DSL; the executor reads the definitions through `Topology`.
 */
import { TopologyError } from './errors.js';
import type { ProcessorSupplier } from './processor.js';
import type { Serde } from './serde.js';
import type { StoreSpec } from './stores.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type AnyProcessorSupplier = ProcessorSupplier<any, any, any, any>;

/** Picks a partition for an output record; return undefined to use the default (murmur2 of the key). */
export type StreamPartitioner<K, V> = (key: K, value: V, numPartitions: number) => number | undefined;

/** A topic reference as the topology holds it: internal topics get the `<appId>-` prefix at run time. */
export interface TopicRef {
  readonly name: string;
  readonly internal: boolean;
}

/**
 * Picks a record's event time from the deserialized record (default: the Kafka record timestamp).
 * A negative or non-finite result drops the record (counted as "invalid timestamp").
 */
export type TimestampExtractor<K, V> = (key: K, value: V, recordTimestamp: number) => number;

export interface SourceNodeDef {
  readonly kind: 'source';
  readonly name: string;
  readonly parents: readonly string[];
  readonly topic: TopicRef;
  readonly keySerde: Serde<any>;
  readonly valueSerde: Serde<any>;
  readonly timestampExtractor?: TimestampExtractor<any, any> | undefined;
}

export interface ProcessorNodeDef {
  readonly kind: 'processor';
  readonly name: string;
  readonly parents: readonly string[];
  /** The operator, for describe(): "filter", "aggregate", "process", ... */
  readonly operator: string;
  readonly supplier: AnyProcessorSupplier;
  readonly stores: readonly string[];
}

export interface SinkNodeDef {
  readonly kind: 'sink';
  readonly name: string;
  readonly parents: readonly string[];
  readonly topic: TopicRef;
  readonly keySerde: Serde<any>;
  readonly valueSerde: Serde<any>;
  readonly partitioner: StreamPartitioner<any, any> | undefined;
}

export type NodeDef = SourceNodeDef | ProcessorNodeDef | SinkNodeDef;

export interface RepartitionTopicDef {
  /** Without the `<appId>-` prefix, e.g. `word-counts-repartition`. */
  readonly name: string;
  /** Fixed partition count, or undefined: as many as the upstream sub-topology's input. */
  readonly partitions: number | undefined;
}

const NAME_RE = /^[a-zA-Z0-9._-]+$/;

export function validateName(name: string, what: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 200 || !NAME_RE.test(name)) {
    throw new TopologyError(
      `${what}: name ${JSON.stringify(name)} is not valid. Use 1-200 characters from [a-zA-Z0-9._-], because store, changelog and repartition topic names derive from it.`,
    );
  }
}

export function requireFunction(fn: unknown, what: string, shape: string): void {
  if (typeof fn !== 'function') {
    throw new TopologyError(`${what}: expected a function ${shape}, got ${fn === null ? 'null' : typeof fn}.`);
  }
}

/** A global table: its topic is read in full by every instance into a key-value store. */
export interface GlobalTableDef {
  /** The store name. */
  readonly name: string;
  /** The topic (a user topic, read outside the consumer group, every partition). */
  readonly topic: string;
  readonly keySerde: Serde<any>;
  readonly valueSerde: Serde<any>;
}

/** Mutable graph under construction; `StreamsBuilder.build()` freezes a copy into a Topology. */
export class InternalBuilder {
  readonly nodes: NodeDef[] = [];
  readonly stores = new Map<string, StoreSpec>();
  readonly repartitionTopics = new Map<string, RepartitionTopicDef>();
  /** Source topics that must be co-partitioned (the two sides of a join); recorded by join operators. */
  readonly copartitionGroups: TopicRef[][] = [];
  readonly globalTables = new Map<string, GlobalTableDef>();
  private readonly nodeNames = new Set<string>();
  private readonly topicSources = new Map<string, string>();
  private counter = 0;

  /** A user-given name (validated, unique) or a generated one like `KSTREAM-FILTER-0000000003`. */
  nodeName(given: string | undefined, prefix: string, operator: string): string {
    if (given !== undefined) {
      validateName(given, operator);
      if (this.nodeNames.has(given)) {
        throw new TopologyError(`${operator}: a node named "${given}" already exists. Give every operator a unique name.`);
      }
      return given;
    }
    let name: string;
    do name = `${prefix}-${String(this.counter++).padStart(10, '0')}`;
    while (this.nodeNames.has(name));
    return name;
  }

  private add(node: NodeDef): string {
    if (this.nodeNames.has(node.name)) {
      throw new TopologyError(`A node named "${node.name}" already exists. Give every operator a unique name.`);
    }
    for (const p of node.parents) {
      if (!this.nodeNames.has(p)) throw new TopologyError(`Node "${node.name}" has an unknown parent "${p}".`);
    }
    this.nodeNames.add(node.name);
    this.nodes.push(node);
    return node.name;
  }

  addGlobalTable(def: GlobalTableDef): void {
    validateName(def.name, 'globalTable');
    if (this.stores.has(def.name) || this.globalTables.has(def.name)) {
      throw new TopologyError(`globalTable: a store named "${def.name}" already exists. Give the global table its own name.`);
    }
    const existing = this.topicSources.get(def.topic);
    if (existing !== undefined) {
      throw new TopologyError(`globalTable: topic "${def.topic}" is already read by source "${existing}". Read each topic once.`);
    }
    this.topicSources.set(def.topic, `global table ${def.name}`);
    this.globalTables.set(def.name, def);
  }

  addSource(node: Omit<SourceNodeDef, 'kind' | 'parents'>): string {
    const key = `${node.topic.internal ? 'internal:' : ''}${node.topic.name}`;
    const existing = this.topicSources.get(key);
    if (existing !== undefined) {
      throw new TopologyError(
        `Topic "${node.topic.name}" is already read by source "${existing}". Read each topic once and reuse the returned KStream/KTable (call .stream() once, then branch with split() or reuse the handle).`,
      );
    }
    this.topicSources.set(key, node.name);
    return this.add({ kind: 'source', parents: [], ...node });
  }

  addProcessor(node: Omit<ProcessorNodeDef, 'kind'>): string {
    return this.add({ kind: 'processor', ...node });
  }

  addSink(node: Omit<SinkNodeDef, 'kind'>): string {
    return this.add({ kind: 'sink', ...node });
  }

  addStore(spec: StoreSpec, operator: string): void {
    validateName(spec.name, operator);
    if (this.stores.has(spec.name) || this.globalTables.has(spec.name)) {
      throw new TopologyError(
        `${operator}: a store named "${spec.name}" already exists. Each stateful operator needs its own name, because the store and its changelog topic are named after it.`,
      );
    }
    this.stores.set(spec.name, spec);
  }

  /** Connects one more store to an existing processor node. */
  connectStore(processor: string, store: string): void {
    const i = this.nodes.findIndex((n) => n.name === processor);
    const n = this.nodes[i];
    if (n?.kind !== 'processor') throw new TopologyError(`connectStore: "${processor}" is not a processor.`);
    this.nodes[i] = { ...n, stores: [...n.stores, store] };
  }

  /** The source nodes upstream of `node` (within what the node can see through its parents). */
  sourcesOf(node: string): string[] {
    const byName = new Map(this.nodes.map((n) => [n.name, n]));
    const out = new Set<string>();
    const seen = new Set<string>();
    const stack = [node];
    while (stack.length > 0) {
      const n = byName.get(stack.pop()!);
      if (n === undefined || seen.has(n.name)) continue;
      seen.add(n.name);
      if (n.kind === 'source') out.add(n.name);
      else stack.push(...n.parents);
    }
    return [...out];
  }

  /** Records that the topics read by these source nodes must have equal partition counts. */
  copartition(sourceNodes: readonly string[]): void {
    const topics: TopicRef[] = [];
    for (const name of sourceNodes) {
      const node = this.nodes.find((n) => n.name === name);
      if (node?.kind !== 'source') throw new TopologyError(`copartition: "${name}" is not a source node.`);
      topics.push(node.topic);
    }
    this.copartitionGroups.push(topics);
  }

  /**
   * Adds the internal topic `topic` (created by the runtime like a repartition topic): one sink
   * writing it from `parents` and one source reading it. Returns the source node's name.
   */
  internalTopic(parents: readonly string[], topic: string, keySerde: Serde<any>, valueSerde: Serde<any>, operator: string): string {
    validateName(topic, operator);
    if (this.repartitionTopics.has(topic)) {
      throw new TopologyError(`${operator}: the internal topic "${topic}" already exists. Give the operator a unique name.`);
    }
    this.repartitionTopics.set(topic, { name: topic, partitions: undefined });
    const ref: TopicRef = { name: topic, internal: true };
    this.addSink({ name: `${topic}-sink`, parents, topic: ref, keySerde, valueSerde, partitioner: undefined });
    return this.addSource({ name: `${topic}-source`, topic: ref, keySerde, valueSerde });
  }

  /**
   * Adds `<name>-repartition`: a sink writing it and a source reading it (the split point between
   * two sub-topologies). Returns the source node's name.
   */
  repartition(parent: string, name: string, keySerde: Serde<any>, valueSerde: Serde<any>, partitions: number | undefined, operator: string): string {
    validateName(name, operator);
    const topicName = `${name}-repartition`;
    if (this.repartitionTopics.has(topicName)) {
      throw new TopologyError(`${operator}: the repartition topic "${topicName}" already exists. Give the operator a unique name.`);
    }
    if (partitions !== undefined && (!Number.isInteger(partitions) || partitions < 1)) {
      throw new TopologyError(`${operator}: numberOfPartitions must be a positive integer, got ${String(partitions)}.`);
    }
    this.repartitionTopics.set(topicName, { name: topicName, partitions });
    const topic: TopicRef = { name: topicName, internal: true };
    this.addSink({ name: `${name}-repartition-sink`, parents: [parent], topic, keySerde, valueSerde, partitioner: undefined });
    return this.addSource({ name: `${name}-repartition-source`, topic, keySerde, valueSerde });
  }
}
