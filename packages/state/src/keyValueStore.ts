import type { CacheFlushListener, FlushListenable, KeyValue, KeyValueStore, Serde } from '@vltava/dsl';
import type { StoreStack } from './storeStack.js';

/** The typed facade of a key-value store: serdes over the bytes stack. */
export class TypedKeyValueStore<K, V> implements KeyValueStore<K, V>, FlushListenable<K, V> {
  private readonly topic: string;

  constructor(
    private readonly stack: StoreStack,
    private readonly keySerde: Serde<K>,
    private readonly valueSerde: Serde<V>,
    private readonly now: () => number,
  ) {
    this.topic = stack.changelogTopic;
  }

  get name(): string {
    return this.stack.name;
  }

  private k(key: K): string {
    return this.keySerde.serialize(key, this.topic).toString('latin1');
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
    const kb = this.keySerde.serialize(key, this.topic);
    const v = value === null || value === undefined ? null : this.valueSerde.serialize(value, this.topic);
    this.stack.top.put(kb.toString('latin1'), v, this.now(), kb);
  }

  putIfAbsent(key: K, value: V): V | undefined {
    const kb = this.keySerde.serialize(key, this.topic);
    const k = kb.toString('latin1');
    const old = this.stack.top.get(k);
    if (old !== undefined) return this.v(old);
    this.stack.top.put(k, this.valueSerde.serialize(value, this.topic), this.now(), kb);
    return undefined;
  }

  putAll(entries: Iterable<KeyValue<K, V>>): void {
    for (const e of entries) this.put(e.key, e.value);
  }

  delete(key: K): V | undefined {
    const kb = this.keySerde.serialize(key, this.topic);
    const k = kb.toString('latin1');
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
