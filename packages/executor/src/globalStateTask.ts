/**
 * Keeps an instance's global stores up to date: every record of a global table's topic (all
 * partitions, read outside the consumer group) is written to its store; a null value deletes.
 * Shared by the Kafka runtime and the TopologyTestDriver, like StreamTask. Kafka-free.
 */
import { ConfigError, ProcessingError, type GlobalTableDef, type KeyValueStore, type Topology } from '@vltava/dsl';
import type { InputRecord, TaskLogger, TaskStoreAccess } from './streamTask.js';

export interface GlobalStateTaskOptions {
  readonly topology: Topology;
  /** Opened from `topology.globalStoreSpecs()` (e.g. `openTaskStores({ taskId: 'global', ... })`). */
  readonly stores: TaskStoreAccess;
  readonly logger?: TaskLogger;
}

interface GlobalEntry {
  readonly def: GlobalTableDef;
  readonly store: KeyValueStore<unknown, unknown>;
}

export class GlobalStateTask {
  readonly stores: TaskStoreAccess;
  private readonly byTopic = new Map<string, GlobalEntry>();
  /** Next offset per `topic:partition` (last applied + 1): the runtime checkpoints these. */
  private readonly next = new Map<string, number>();
  private nDropped = 0;
  private readonly logger: TaskLogger | undefined;

  constructor(opts: GlobalStateTaskOptions) {
    this.stores = opts.stores;
    this.logger = opts.logger;
    for (const def of opts.topology.globalTables) {
      this.byTopic.set(def.topic, { def, store: opts.stores.getStore<KeyValueStore<unknown, unknown>>(def.name) });
    }
  }

  /** The topics this task reads (every partition). */
  topics(): string[] {
    return [...this.byTopic.keys()];
  }

  /** Applies one record of a global topic to its store. */
  process(record: InputRecord): void {
    const e = this.byTopic.get(record.topic);
    if (e === undefined) throw new ConfigError(`"${record.topic}" is not a global table topic; global topics are [${this.topics().join(', ')}].`);
    this.next.set(`${record.topic}:${record.partition}`, record.offset + 1);
    if (record.key === null) {
      this.nDropped++;
      this.logger?.warn(`Skipping record ${record.topic}/${record.partition}@${record.offset} for global table "${e.def.name}": null key`);
      return;
    }
    let key: unknown;
    let value: unknown = null;
    try {
      key = e.def.keySerde.deserialize(record.key, record.topic);
      if (record.value !== null) value = e.def.valueSerde.deserialize(record.value, record.topic);
    } catch (err) {
      throw new ProcessingError(
        `Could not deserialize record ${record.topic}/${record.partition}@${record.offset} of global table "${e.def.name}": ${err instanceof Error ? err.message : String(err)}. Fix the producer or the table's serdes.`,
        { node: `global:${e.def.name}`, topic: record.topic, partition: record.partition, offset: record.offset },
        { cause: err },
      );
    }
    if (value === null) e.store.delete(key);
    else e.store.put(key, value);
  }

  /** Next offsets to checkpoint, by `topic:partition`. */
  offsets(): ReadonlyMap<string, number> {
    return this.next;
  }

  /** Records skipped (null keys). */
  dropped(): number {
    return this.nDropped;
  }
}
