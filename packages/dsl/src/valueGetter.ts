/**
 * How a join reads the current value of a KTable by key without materializing every derived table:
 * a table backed by a store reads the store; `filter`/`mapValues`/join results apply their
 * function to the value(s) of their parent(s), as Kafka Streams' KTableValueGetter does.
 */
import type { ProcessorContext } from './processor.js';
import type { KeyValueStore, SessionStore, Windowed, WindowStore } from './stores.js';

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

/** A windowed table backed by a window store: the row of a window is the store's value at (key, start). */
export function windowStoreGetter<K, V>(store: string): ValueGetter<Windowed<K>, V> {
  return {
    stores: [store],
    connect(ctx) {
      const s = ctx.getStateStore<WindowStore<K, V>>(store);
      return (wk) => s.fetch(wk.key, wk.window.start);
    },
  };
}

/** A session-windowed table: the row of a session is the store's value for exactly that session. */
export function sessionStoreGetter<K, V>(store: string): ValueGetter<Windowed<K>, V> {
  return {
    stores: [store],
    connect(ctx) {
      const s = ctx.getStateStore<SessionStore<K, V>>(store);
      return (wk) => s.fetchSession(wk.key, wk.window.start, wk.window.end);
    },
  };
}
