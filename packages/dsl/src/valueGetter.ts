/**
 * How a join reads the current value of a KTable by key without materializing every derived table:
 * a table backed by a store reads the store; `filter`/`mapValues`/join results apply their
 * function to the value(s) of their parent(s), as Kafka Streams' KTableValueGetter does.
 */
import type { ProcessorContext } from './processor.js';
import type { KeyValueStore, SessionStore, Windowed, WindowStore } from './stores.js';
import type { ValueAndTimestamp } from './timestamped.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

export interface ValueGetter<K, V> {
  /** Stores a processor must be connected to for `connect` to work. */
  readonly stores: readonly string[];
  /**
   * Called in a processor's init: returns the lookup function (undefined: no row). A row carries
   * its timestamp (as Kafka Streams' KTableValueGetter returns ValueAndTimestamp).
   */
  connect(ctx: ProcessorContext<any, any>): (key: K) => ValueAndTimestamp<V> | undefined;
  /**
   * Versioned tables only (KIP-914): the lookup of the row valid at a timestamp. Stream-table joins
   * use it with the stream record's timestamp.
   */
  connectVersioned?(ctx: ProcessorContext<any, any>): (key: K, asOfTimestamp: number) => ValueAndTimestamp<V> | undefined;
  /** Versioned tables only: the history retention (the longest grace a stream-table join may use). */
  readonly historyRetentionMs?: number;
}

/** A table materialized in a timestamped key-value store. */
export function storeGetter<K, V>(store: string): ValueGetter<K, V> {
  return {
    stores: [store],
    connect(ctx) {
      const s = ctx.getStateStore<KeyValueStore<K, ValueAndTimestamp<V>>>(store);
      return (key) => s.get(key);
    },
  };
}

/** filter/mapValues of a table: the function applied to the parent's row; the timestamp is the parent row's. */
export function mappedGetter<K, V, V2>(parent: ValueGetter<K, V>, fn: (key: K, value: V) => V2 | undefined): ValueGetter<K, V2> {
  const apply = (key: K, v: ValueAndTimestamp<V> | undefined): ValueAndTimestamp<V2> | undefined => {
    if (v === undefined) return undefined;
    const out = fn(key, v.value);
    return out === undefined ? undefined : { value: out, timestamp: v.timestamp };
  };
  const connectVersioned = parent.connectVersioned;
  return {
    stores: parent.stores,
    connect(ctx) {
      const get = parent.connect(ctx);
      return (key) => apply(key, get(key));
    },
    ...(connectVersioned === undefined
      ? {}
      : {
          historyRetentionMs: parent.historyRetentionMs,
          connectVersioned(ctx: ProcessorContext<any, any>) {
            const get = connectVersioned.call(parent, ctx);
            return (key: K, asOf: number) => apply(key, get(key, asOf));
          },
        }),
  };
}

/** A windowed table backed by a window store: the row of a window is the store's value at (key, start). */
export function windowStoreGetter<K, V>(store: string): ValueGetter<Windowed<K>, V> {
  return {
    stores: [store],
    connect(ctx) {
      const s = ctx.getStateStore<WindowStore<K, ValueAndTimestamp<V>>>(store);
      return (wk) => s.fetch(wk.key, wk.window.start);
    },
  };
}

/** A session-windowed table: the row of a session is the store's value for exactly that session, stamped with its end. */
export function sessionStoreGetter<K, V>(store: string): ValueGetter<Windowed<K>, V> {
  return {
    stores: [store],
    connect(ctx) {
      const s = ctx.getStateStore<SessionStore<K, V>>(store);
      return (wk) => {
        const v = s.fetchSession(wk.key, wk.window.start, wk.window.end);
        return v === undefined ? undefined : { value: v, timestamp: wk.window.end };
      };
    },
  };
}
