import { Serdes, type CacheFlushListener, type FlushListenable, type KeyValue, type KeyValueStore, type Serde } from '@vltava/dsl';
import type { StoreStack } from './storeStack.js';

const STRING_SERDE: Serde<unknown> = Serdes.string() as Serde<unknown>;

/**
 * The bytes-level key of an ASCII string under the built-in string serde, without a Buffer: its
 * UTF-8 bytes are its chars, so its latin1 byte string is the string itself. Undefined otherwise.
 */
function asciiKey(key: unknown): string | undefined {
  if (typeof key !== 'string') return undefined;
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) > 0x7f) return undefined;
  return key;
}

/** The typed facade of a key-value store: serdes over the bytes stack. */
export class TypedKeyValueStore<K, V> implements KeyValueStore<K, V>, FlushListenable<K, V> {
  private readonly topic: string;
  /** The built-in string serde: ASCII keys skip the Buffer (see asciiKey). */
  private readonly stringKeys: boolean;

  constructor(
    private readonly stack: StoreStack,
    private readonly keySerde: Serde<K>,
    private readonly valueSerde: Serde<V>,
    private readonly now: () => number,
  ) {
    this.topic = stack.changelogTopic;
    this.stringKeys = (keySerde as Serde<unknown>) === STRING_SERDE;
  }

  get name(): string {
    return this.stack.name;
  }

  private k(key: K): string {
    if (this.stringKeys) {
      const a = asciiKey(key);
      if (a !== undefined) return a;
    }
    return this.keySerde.serialize(key, this.topic).toString('latin1');
  }

  /** The key's byte string, and its bytes when they had to be built anyway (else the layers build them if needed). */
  private kb: Buffer | undefined;
  private kWithBytes(key: K): string {
    if (this.stringKeys) {
      const a = asciiKey(key);
      if (a !== undefined) {
        this.kb = undefined;
        return a;
      }
    }
    const kb = this.keySerde.serialize(key, this.topic);
    this.kb = kb;
    return kb.toString('latin1');
  }

  private v(b: Buffer): V {
    return this.valueSerde.deserialize(b, this.topic);
  }

  private entry(e: readonly [string, Buffer]): KeyValue<K, V> {
    return { key: this.keySerde.deserialize(Buffer.from(e[0], 'latin1'), this.topic), value: this.v(e[1]) };
  }

  get(key: K): V | undefined {
    const b = this.stack.top.get(this.k(key));
    return b === undefined ? undefined : this.v(b);
  }

  /** `null` or `undefined` deletes, as in Kafka Streams. */
  put(key: K, value: V): void {
    const k = this.kWithBytes(key);
    const kb = this.kb;
    const v = value === null || value === undefined ? null : this.valueSerde.serialize(value, this.topic);
    this.stack.top.put(k, v, this.now(), kb);
  }

  putIfAbsent(key: K, value: V): V | undefined {
    const k = this.kWithBytes(key);
    const kb = this.kb;
    const old = this.stack.top.get(k);
    if (old !== undefined) return this.v(old);
    this.stack.top.put(k, this.valueSerde.serialize(value, this.topic), this.now(), kb);
    return undefined;
  }

  putAll(entries: Iterable<KeyValue<K, V>>): void {
    for (const e of entries) this.put(e.key, e.value);
  }

  delete(key: K): V | undefined {
    const k = this.kWithBytes(key);
    const kb = this.kb;
    const old = this.stack.top.get(k);
    if (old === undefined) return undefined;
    this.stack.top.put(k, null, this.now(), kb);
    return this.v(old);
  }

  *range(from?: K, to?: K): Generator<KeyValue<K, V>, void, undefined> {
    const f = from === undefined ? undefined : this.k(from);
    const t = to === undefined ? undefined : this.k(to);
    for (const e of this.stack.top.range(f, t)) yield this.entry(e);
  }

  all(): Generator<KeyValue<K, V>, void, undefined> {
    return this.range();
  }

  *prefixScan<P>(prefix: P, prefixSerde: Serde<P>): Generator<KeyValue<K, V>, void, undefined> {
    const p = prefixSerde.serialize(prefix, this.topic).toString('latin1');
    for (const e of this.stack.top.range(p)) {
      if (!e[0].startsWith(p)) return;
      yield this.entry(e);
    }
  }

  approximateNumEntries(): number {
    return this.stack.top.approximateCount();
  }

  setFlushListener(listener: CacheFlushListener<K, V> | undefined): boolean {
    const cache = this.stack.cache;
    if (cache === undefined) return false;
    cache.listener =
      listener === undefined
        ? undefined
        : (k, nv, ov, ts) =>
            listener(
              this.keySerde.deserialize(Buffer.from(k, 'latin1'), this.topic),
              nv === null ? undefined : this.v(nv),
              ov === null ? undefined : this.v(ov),
              ts,
            );
    return true;
  }
}
