/**
 * Foreign-key table-table join (KIP-213): `left.join(right, joiner, { name, foreignKeyExtractor })`
 * joins each left row with the right row whose key is `foreignKeyExtractor(leftValue)`.
 *
 * The two tables may be partitioned differently, so the join goes through two internal topics:
 * 1. the left side sends a subscription `(fk, {instruction, hash of left value, left key})` to
 *    `<appId>-<name>-subscription-registration-topic` (partitioned like the right table);
 * 2. the right side keeps subscriptions in store `<name>-subscription-store` (key: fk + left key)
 *    and answers each subscription, and each right-row update for all its subscribers, with
 *    `(left key, {hash, right value})` on `<appId>-<name>-subscription-response-topic`;
 * 3. the left side joins a response only if its hash still matches the current left value (a
 *    stale response, from before the left row changed, is dropped), and keeps the result in
 *    store `<name>`, so the result is a proper table with old values.
 */
import { createHash } from 'node:crypto';
import { PassThroughProcessor } from './builtinProcessors.js';
import { TopologyError } from './errors.js';
import { requireFunction } from './graph.js';
import { requireName } from './kStream.js';
import { KTable } from './kTable.js';
import type { Change, Processor, ProcessorContext, StreamRecord } from './processor.js';
import type { Serde } from './serde.js';
import { Serdes } from './serdes.js';
import type { KeyValueStore } from './stores.js';
import { type ValueAndTimestamp, timestampedSpec } from './timestamped.js';
import type { ValueGetter } from './valueGetter.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Ctx = ProcessorContext<any, any>;

export interface ForeignKeyJoinedOptions<K, V, KO, VR> {
  /** Required: names the internal topics `<appId>-<name>-subscription-registration-topic` / `-subscription-response-topic` and the stores. */
  readonly name: string;
  /** The right table's key for a left row; `null`/`undefined`: no right row (leftJoin still emits). */
  readonly foreignKeyExtractor: (value: V, key: K) => KO | null | undefined;
  /** Serde of the result store `<name>` (default msgpack). */
  readonly valueSerde?: Serde<VR>;
}

const enum Instruction {
  DeleteKeyNoPropagate = 0,
  DeleteKeyAndPropagate = 1,
  PropagateNullIfNoFkValAvailable = 2,
  PropagateOnlyIfFkValAvailable = 3,
}

interface Subscription<K> {
  readonly instruction: Instruction;
  readonly hash: Buffer | null;
  readonly primaryKey: K;
}

interface Response<VO> {
  readonly hash: Buffer | null;
  readonly value: VO | null;
}

interface CombinedKey<KO, K> {
  readonly fk: KO;
  readonly pk: K;
}

function hashOf(serde: Serde<any>, value: unknown): Buffer {
  return createHash('md5').update(serde.serialize(value)).digest();
}

function subscriptionSerde<K>(pkSerde: Serde<K>): Serde<Subscription<K>> {
  return {
    name: `fk-subscription<${pkSerde.name}>`,
    serialize(s, topic) {
      const pk = pkSerde.serialize(s.primaryKey, topic);
      const h = s.hash;
      const buf = Buffer.allocUnsafe(2 + (h ? 16 : 0) + pk.length);
      buf[0] = s.instruction;
      buf[1] = h ? 1 : 0;
      h?.copy(buf, 2);
      pk.copy(buf, 2 + (h ? 16 : 0));
      return buf;
    },
    deserialize(data, topic) {
      const has = data[1] === 1;
      return {
        instruction: data[0] as Instruction,
        hash: has ? Buffer.from(data.subarray(2, 18)) : null,
        primaryKey: pkSerde.deserialize(data.subarray(has ? 18 : 2), topic),
      };
    },
  };
}

function responseSerde<VO>(valueSerde: Serde<VO>): Serde<Response<VO>> {
  return {
    name: `fk-response<${valueSerde.name}>`,
    serialize(r, topic) {
      const v = r.value === null ? undefined : valueSerde.serialize(r.value, topic);
      const h = r.hash;
      const buf = Buffer.allocUnsafe(2 + (h ? 16 : 0) + (v?.length ?? 0));
      buf[0] = h ? 1 : 0;
      buf[1] = v ? 1 : 0;
      h?.copy(buf, 2);
      v?.copy(buf, 2 + (h ? 16 : 0));
      return buf;
    },
    deserialize(data, topic) {
      const hasHash = data[0] === 1;
      const off = hasHash ? 18 : 2;
      return { hash: hasHash ? Buffer.from(data.subarray(2, 18)) : null, value: data[1] === 1 ? valueSerde.deserialize(data.subarray(off), topic) : null };
    },
  };
}

/** Subscription store key: fk length (4 bytes), fk bytes, primary key bytes: all subscribers of an fk share a prefix. */
function combinedKeySerde<KO, K>(fkSerde: Serde<KO>, pkSerde: Serde<K>): Serde<CombinedKey<KO, K>> {
  return {
    name: `fk-combined<${fkSerde.name},${pkSerde.name}>`,
    serialize(c, topic) {
      const fk = fkSerde.serialize(c.fk, topic);
      const pk = pkSerde.serialize(c.pk, topic);
      const buf = Buffer.allocUnsafe(4 + fk.length + pk.length);
      buf.writeUInt32BE(fk.length, 0);
      fk.copy(buf, 4);
      pk.copy(buf, 4 + fk.length);
      return buf;
    },
    deserialize(data, topic) {
      const n = data.readUInt32BE(0);
      return { fk: fkSerde.deserialize(data.subarray(4, 4 + n), topic), pk: pkSerde.deserialize(data.subarray(4 + n), topic) };
    },
  };
}

function fkPrefixSerde<KO>(fkSerde: Serde<KO>): Serde<KO> {
  return {
    name: `fk-prefix<${fkSerde.name}>`,
    serialize(fk, topic) {
      const b = fkSerde.serialize(fk, topic);
      const buf = Buffer.allocUnsafe(4 + b.length);
      buf.writeUInt32BE(b.length, 0);
      b.copy(buf, 4);
      return buf;
    },
    deserialize() {
      throw new Error('fk prefix serde is write-only');
    },
  };
}

const isNull = (x: unknown): boolean => x === null || x === undefined;

function sameKey(serde: Serde<any>, a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (isNull(a) || isNull(b)) return false;
  return serde.serialize(a).equals(serde.serialize(b));
}

/**
 * Writes a result row into the result store and forwards the change (old value from the store).
 * A null result is forwarded even when the key had no result (as Kafka Streams does: the join
 * cannot know whether the left row joined before, so it always sends the tombstone).
 */
function emitResult<K, VR>(forward: (rec: StreamRecord<K, Change<VR>>) => void, store: KeyValueStore<K, ValueAndTimestamp<VR>>, key: K, result: VR | null, r: StreamRecord<any, any>): void {
  const old = result === null ? store.delete(key) : store.get(key);
  if (result !== null) store.put(key, { value: result, timestamp: r.timestamp });
  const change: Change<VR> = { newValue: result, oldValue: old === undefined ? null : old.value };
  forward({ key, value: change, timestamp: r.timestamp, headers: r.headers });
}

/** Left side: turns left-row changes into subscriptions (and emits results that need no right row). */
class SubscriptionSendProcessor<K, V, KO, VR> implements Processor<K, Change<V>, any, any> {
  private ctx!: Ctx;
  private result!: KeyValueStore<K, ValueAndTimestamp<VR>>;
  constructor(
    private readonly resultStore: string,
    private readonly fkOf: (value: V, key: K) => KO | null | undefined,
    private readonly fkSerde: Serde<KO>,
    private readonly leftValueSerde: Serde<V>,
    private readonly leftJoin: boolean,
    private readonly joiner: (value: V, other: any, key: K) => VR,
    private readonly sinkName: string,
    private readonly resultName: string,
  ) {}
  init(ctx: Ctx): void {
    this.ctx = ctx;
    this.result = ctx.getStateStore<KeyValueStore<K, ValueAndTimestamp<VR>>>(this.resultStore);
  }
  private send(fk: KO, instruction: Instruction, hash: Buffer | null, pk: K, r: StreamRecord<any, any>): void {
    const s: Subscription<K> = { instruction, hash, primaryKey: pk };
    this.ctx.forward({ key: fk, value: s, timestamp: r.timestamp, headers: r.headers }, this.sinkName);
  }
  process(r: StreamRecord<K, Change<V>>): void {
    const c = r.value;
    const pk = r.key;
    if (c.newValue === null && c.oldValue === null) return;
    const oldFk = c.oldValue === null ? null : this.fkOf(c.oldValue, pk);
    const newFk = c.newValue === null ? null : this.fkOf(c.newValue, pk);
    // The instructions of Kafka Streams' SubscriptionSendProcessorSupplier, so the result changelog
    // is the same, tombstones for rows that never joined included.
    if (c.newValue === null) {
      // The left row was deleted: the old foreign key's side answers with a tombstone.
      if (!isNull(oldFk)) this.send(oldFk as KO, Instruction.DeleteKeyAndPropagate, null, pk, r);
      else if (this.leftJoin) emitResult(this.direct, this.result, pk, null, r);
      return;
    }
    const hash = hashOf(this.leftValueSerde, c.newValue);
    const fkChanged = !sameKey(this.fkSerde, oldFk, newFk);
    if (isNull(newFk)) {
      if (fkChanged && !isNull(oldFk) && this.leftJoin) this.send(oldFk as KO, Instruction.DeleteKeyNoPropagate, null, pk, r);
      if (this.leftJoin) {
        // No right row can match: a left join emits at once (Kafka Streams round-trips a null foreign key).
        emitResult(this.direct, this.result, pk, this.joiner(c.newValue, null, pk), r);
      } else if (!isNull(oldFk)) {
        // An inner join unsubscribes and retracts the result through the old foreign key's side.
        this.send(oldFk as KO, Instruction.DeleteKeyAndPropagate, hash, pk, r);
      } else {
        this.ctx.recordDropped('null foreign key in join');
      }
      return;
    }
    if (fkChanged && !isNull(oldFk)) this.send(oldFk as KO, Instruction.DeleteKeyNoPropagate, null, pk, r);
    // Inner join: a new foreign key without a right row retracts the old result; an insert, or the
    // same foreign key, only answers if there is a right row.
    const instruction = this.leftJoin || (fkChanged && !isNull(oldFk)) ? Instruction.PropagateNullIfNoFkValAvailable : Instruction.PropagateOnlyIfFkValAvailable;
    this.send(newFk as KO, instruction, hash, pk, r);
  }
  /** Forwards a result to the result node only (not to the registration topic). */
  private readonly direct = (rec: StreamRecord<K, Change<VR>>): void => this.ctx.forward(rec, this.resultName);
}

/** Right side: keeps subscriptions and answers them with the current right row. */
class SubscriptionReceiveProcessor<K, KO, VO> implements Processor<KO, Subscription<K>, K, Response<VO>> {
  private ctx!: Ctx;
  private store!: KeyValueStore<CombinedKey<KO, K>, Buffer>;
  private get!: (key: KO) => ValueAndTimestamp<VO> | undefined;
  constructor(
    private readonly storeName: string,
    private readonly rightGetter: ValueGetter<KO, VO>,
  ) {}
  init(ctx: Ctx): void {
    this.ctx = ctx;
    this.store = ctx.getStateStore<KeyValueStore<CombinedKey<KO, K>, Buffer>>(this.storeName);
    this.get = this.rightGetter.connect(ctx);
  }
  process(r: StreamRecord<KO, Subscription<K>>): void {
    if (isNull(r.key) || r.value === null) return;
    const s = r.value;
    const ck: CombinedKey<KO, K> = { fk: r.key, pk: s.primaryKey };
    if (s.instruction === Instruction.DeleteKeyNoPropagate || s.instruction === Instruction.DeleteKeyAndPropagate) this.store.delete(ck);
    else this.store.put(ck, s.hash ?? Buffer.alloc(0));
    if (s.instruction === Instruction.DeleteKeyNoPropagate) return;
    const v = s.instruction === Instruction.DeleteKeyAndPropagate ? undefined : this.get(r.key);
    if (v === undefined && s.instruction === Instruction.PropagateOnlyIfFkValAvailable) return;
    const response: Response<VO> = { hash: s.hash, value: v === undefined ? null : v.value };
    // The response carries the larger of the subscription's and the right row's timestamps.
    const ts = v !== undefined && v.timestamp > r.timestamp ? v.timestamp : r.timestamp;
    this.ctx.forward({ key: s.primaryKey, value: response, timestamp: ts, headers: r.headers });
  }
}

/** Right side: a right-row update is sent to every subscriber of its key. */
class ForeignTableChangeProcessor<K, KO, VO> implements Processor<KO, Change<VO>, K, Response<VO>> {
  private ctx!: Ctx;
  private store!: KeyValueStore<CombinedKey<KO, K>, Buffer>;
  constructor(
    private readonly storeName: string,
    private readonly prefixSerde: Serde<KO>,
  ) {}
  init(ctx: Ctx): void {
    this.ctx = ctx;
    this.store = ctx.getStateStore<KeyValueStore<CombinedKey<KO, K>, Buffer>>(this.storeName);
  }
  process(r: StreamRecord<KO, Change<VO>>): void {
    if (isNull(r.key)) return;
    const subs = [...this.store.prefixScan(r.key, this.prefixSerde)];
    for (const kv of subs) {
      const response: Response<VO> = { hash: kv.value.length === 16 ? kv.value : null, value: r.value.newValue };
      this.ctx.forward({ key: kv.key.pk, value: response, timestamp: r.timestamp, headers: r.headers });
    }
  }
}

/** Left side: joins a response with the current left row if it is not stale. */
class ResponseJoinProcessor<K, V, VO, VR> implements Processor<K, Response<VO>, K, Change<VR>> {
  private ctx!: Ctx;
  private result!: KeyValueStore<K, ValueAndTimestamp<VR>>;
  private get!: (key: K) => ValueAndTimestamp<V> | undefined;
  constructor(
    private readonly resultStore: string,
    private readonly leftGetter: ValueGetter<K, V>,
    private readonly leftValueSerde: Serde<V>,
    private readonly leftJoin: boolean,
    private readonly joiner: (value: V, other: VO | null, key: K) => VR,
  ) {}
  init(ctx: Ctx): void {
    this.ctx = ctx;
    this.result = ctx.getStateStore<KeyValueStore<K, ValueAndTimestamp<VR>>>(this.resultStore);
    this.get = this.leftGetter.connect(ctx);
  }
  process(r: StreamRecord<K, Response<VO>>): void {
    const current = this.get(r.key)?.value;
    const currentHash = current === undefined ? null : hashOf(this.leftValueSerde, current);
    const h = r.value.hash;
    if (!(h === null ? currentHash === null : currentHash !== null && h.equals(currentHash))) {
      this.ctx.recordDropped('stale foreign-key join response');
      return;
    }
    const fv = r.value.value;
    const result = current === undefined || (fv === null && !this.leftJoin) ? null : this.joiner(current, fv, r.key);
    emitResult((rec) => this.ctx.forward(rec), this.result, r.key, result, r);
  }
}

export function foreignKeyJoin<K, V, KO, VO, VR>(
  left: KTable<K, V>,
  right: KTable<KO, VO>,
  joiner: (value: V, other: any, key: K) => VR,
  opts: ForeignKeyJoinedOptions<K, V, KO, VR>,
  leftJoin: boolean,
): KTable<K, VR> {
  const op = leftJoin ? 'KTable.leftJoin (foreign key)' : 'KTable.join (foreign key)';
  const b = left.builder;
  if (!(right instanceof KTable) || right.builder !== b) throw new TopologyError(`${op}: the other side must be a KTable from the same StreamsBuilder.`);
  requireFunction(joiner, op, '(value, otherValue) => joined');
  requireFunction(opts?.foreignKeyExtractor, op, '(value, key) => foreignKey');
  const name = requireName(opts, op, "join(customers, (order, customer) => ({ ...order, customer }), { name: 'orders-customers', foreignKeyExtractor: (o) => o.customerId })", 'The subscription/response topics and stores');
  const lg = left.valueGetter;
  const rg = right.valueGetter;
  if (lg === undefined || rg === undefined) {
    throw new TopologyError(`${op} "${name}": both tables must be looked up by key (not suppressed). Join tables from builder.table(...), toTable({ name }) or aggregations.`);
  }
  const pkSerde = left.keySerde ?? Serdes.msgpack<K>();
  const fkSerde = right.keySerde ?? Serdes.msgpack<KO>();
  const leftValueSerde = left.valueSerde ?? Serdes.msgpack<V>();
  const rightValueSerde = right.valueSerde ?? Serdes.msgpack<VO>();
  const resultSerde = opts.valueSerde ?? Serdes.msgpack<VR>();
  const subscriptionStore = `${name}-subscription-store`;
  b.addStore(timestampedSpec({ name, kind: 'keyValue', keySerde: pkSerde, valueSerde: resultSerde, logging: true, caching: false }), op);
  b.addStore(
    { name: subscriptionStore, kind: 'keyValue', keySerde: combinedKeySerde(fkSerde, pkSerde), valueSerde: Serdes.bytes(), logging: true, caching: false, rangeScans: true },
    op,
  );
  const registration = `${name}-subscription-registration-topic`;
  const response = `${name}-subscription-response-topic`;
  const sendName = `${name}-subscription-send`;
  // The send node forwards subscriptions to the registration sink and direct results to the result node.
  b.addProcessor({
    name: sendName,
    operator: 'fk-join subscribe',
    parents: [left.node],
    supplier: () => new SubscriptionSendProcessor(name, opts.foreignKeyExtractor, fkSerde, leftValueSerde, leftJoin, joiner, `${registration}-sink`, `${name}-direct`),
    stores: [name],
  });
  const regSource = b.internalTopic([sendName], registration, fkSerde, subscriptionSerde(pkSerde), op);
  const receiveName = `${name}-subscription-receive`;
  b.addProcessor({ name: receiveName, operator: 'fk-join subscriptions', parents: [regSource], supplier: () => new SubscriptionReceiveProcessor(subscriptionStore, rg), stores: [subscriptionStore, ...rg.stores] });
  const rightName = `${name}-foreign-change`;
  b.addProcessor({ name: rightName, operator: 'fk-join foreign updates', parents: [right.node], supplier: () => new ForeignTableChangeProcessor(subscriptionStore, fkPrefixSerde(fkSerde)), stores: [subscriptionStore] });
  const respSource = b.internalTopic([receiveName, rightName], response, pkSerde, responseSerde(rightValueSerde), op);
  const joinName = `${name}-response-join`;
  b.addProcessor({ name: joinName, operator: 'fk-join responses', parents: [respSource], supplier: () => new ResponseJoinProcessor(name, lg, leftValueSerde, leftJoin, joiner), stores: [name, ...lg.stores] });
  b.addProcessor({ name: `${name}-direct`, operator: 'fk-join direct results', parents: [sendName], supplier: () => new PassThroughProcessor(), stores: [] });
  b.addProcessor({ name: `${name}-result`, operator: 'fk-join result', parents: [joinName, `${name}-direct`], supplier: () => new PassThroughProcessor(), stores: [] });
  b.copartition([...b.sourcesOf(right.node), regSource]);
  b.copartition([...b.sourcesOf(left.node), respSource]);
  return new KTable<K, VR>(b, `${name}-result`, pkSerde, resultSerde, name);
}
