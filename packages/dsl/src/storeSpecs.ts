import { TopologyError } from './errors.js';
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
  /** Whether range(), all() and prefixScan() are used (default true); false makes point lookups cheaper. */
  readonly rangeScans?: boolean;
  readonly changelogConfig?: Readonly<Record<string, string>>;
}

export interface WindowStoreOptions<K, V> extends Omit<KeyValueStoreOptions<K, V>, 'rangeScans'> {
  /** How long windows are kept, in ms of stream time (window size + grace, at least). */
  readonly retentionMs: number;
  readonly windowSizeMs: number;
}

export interface SessionStoreOptions<K, V> extends Omit<KeyValueStoreOptions<K, V>, 'rangeScans'> {
  /** How long sessions are kept, in ms of stream time (inactivity gap + grace, at least). */
  readonly retentionMs: number;
}

function positive(n: unknown, what: string, store: string): number {
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) {
    throw new TopologyError(`Store "${store}": ${what} must be a positive number of milliseconds, got ${String(n)}.`);
  }
  return n;
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
      ...(opts.rangeScans === undefined ? {} : { rangeScans: opts.rangeScans }),
      ...(opts.changelogConfig ? { changelogConfig: opts.changelogConfig } : {}),
    };
  },

  /** A window store (key + window start -> value), segmented by time and expired after `retentionMs`. */
  windowStore<K, V>(opts: WindowStoreOptions<K, V>): StoreSpec<K, V> {
    validateName(opts.name, 'Stores.windowStore');
    return {
      name: opts.name,
      kind: 'window',
      keySerde: opts.keySerde ?? Serdes.msgpack<K>(),
      valueSerde: opts.valueSerde ?? Serdes.msgpack<V>(),
      logging: opts.logging ?? true,
      caching: opts.caching ?? true,
      retentionMs: positive(opts.retentionMs, 'retentionMs', opts.name),
      windowSizeMs: positive(opts.windowSizeMs, 'windowSizeMs', opts.name),
      ...(opts.changelogConfig ? { changelogConfig: opts.changelogConfig } : {}),
    };
  },

  /** A session store (key + session window -> value), expired after `retentionMs`. */
  sessionStore<K, V>(opts: SessionStoreOptions<K, V>): StoreSpec<K, V> {
    validateName(opts.name, 'Stores.sessionStore');
    return {
      name: opts.name,
      kind: 'session',
      keySerde: opts.keySerde ?? Serdes.msgpack<K>(),
      valueSerde: opts.valueSerde ?? Serdes.msgpack<V>(),
      logging: opts.logging ?? true,
      caching: opts.caching ?? true,
      retentionMs: positive(opts.retentionMs, 'retentionMs', opts.name),
      ...(opts.changelogConfig ? { changelogConfig: opts.changelogConfig } : {}),
    };
  },
} as const;
