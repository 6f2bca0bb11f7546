import type { InternalBuilder } from './graph.js';
import type { Serde } from './serde.js';

/**
 * A table replicated in full on every instance (`builder.globalTable(topic, { name })`): each
 * instance reads every partition of the topic into the store `<name>`, outside the consumer
 * group, so joining a stream with it needs no co-partitioning. The topic is its own changelog.
 * Streams join it through a key mapper: `stream.join(global, joiner, { name, keyMapper })`.
 */
export class GlobalKTable<K, V> {
  /** @internal */
  constructor(
    /** @internal */ readonly builder: InternalBuilder,
    /** The store holding the table (query it with the driver's getKeyValueStore). */
    readonly queryableStoreName: string,
    /** @internal */ readonly topic: string,
    /** @internal */ readonly keySerde: Serde<K>,
    /** @internal */ readonly valueSerde: Serde<V>,
  ) {}
}
