import { validateName } from './graph.js';
import type { Serde } from './serde.js';
import { Serdes } from './serdes.js';
import type { StoreSpec } from './stores.js';

export interface KeyValueStoreOptions<K, V> {
  readonly name: string;
  /** Default: msgpack. */
  readonly keySerde?: Serde<K>;
  /** Default: msgpack. */
  readonly valueSerde?: Serde<V>;
  /** Change-log writes to `<appId>-<name>-changelog` (default true). */
  readonly logging?: boolean;
  readonly caching?: boolean;
  readonly changelogConfig?: Readonly<Record<string, string>>;
}

/** Store specifications for `builder.addStateStore(...)`. */
export const Stores = {
  keyValueStore<K, V>(opts: KeyValueStoreOptions<K, V>): StoreSpec<K, V> {
    validateName(opts.name, 'Stores.keyValueStore');
    return {
      name: opts.name,
      kind: 'keyValue',
      keySerde: opts.keySerde ?? Serdes.msgpack<K>(),
      valueSerde: opts.valueSerde ?? Serdes.msgpack<V>(),
      logging: opts.logging ?? true,
      caching: opts.caching ?? true,
      ...(opts.changelogConfig ? { changelogConfig: opts.changelogConfig } : {}),
    };
  },
} as const;
