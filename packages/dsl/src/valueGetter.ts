/**
 * How a join reads the current value of a KTable by key without materializing every derived table:
 * a table backed by a store reads the store; `filter`/`mapValues`/join results apply their
 * function to the value(s) of their parent(s), as Kafka Streams' KTableValueGetter does.
 */
import type { ProcessorContext } from './processor.js';
import type { KeyValueStore } from './stores.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

export interface ValueGetter<K, V> {
  /** Stores a processor must be connected to for `connect` to work. */
  readonly stores: readonly string[];
  /** Called in a processor's init: returns the lookup function (undefined: no row). */
  connect(ctx: ProcessorContext<any, any>): (key: K) => V | undefined;
}

export function storeGetter<K, V>(store: string): ValueGetter<K, V> {
  return {
    stores: [store],
    connect(ctx) {
      const s = ctx.getStateStore<KeyValueStore<K, V>>(store);
      return (key) => s.get(key);
    },
  };
}

export function mappedGetter<K, V, V2>(parent: ValueGetter<K, V>, fn: (key: K, value: V) => V2 | undefined): ValueGetter<K, V2> {
  return {
    stores: parent.stores,
    connect(ctx) {
      const get = parent.connect(ctx);
      return (key) => {
        const v = get(key);
        return v === undefined ? undefined : fn(key, v);
      };
    },
  };
}
