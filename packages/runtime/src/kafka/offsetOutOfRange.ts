/**
 * kafkajs' out-of-range recovery, made safe for exactly-once.
 *
 * When a fetch answers OFFSET_OUT_OF_RANGE (the position fell below the log start after retention
 * or deleteRecords, or above the end after a topic was recreated), kafkajs 2.2.4 calls
 * `OffsetManager.setDefaultOffset`, which sends a plain OffsetCommit of -2/-1 for the group, whatever
 * `autoCommit` says, outside any transaction, and then refetches from the earliest/latest offset. In
 * a Vltava app that loops: the task rejects the batch as fetched past its position, seeks back, and
 * the next fetch is out of range again (4,335 resets in 20 s in the report of issue 11), while the
 * group's committed offset reads "-2".
 *
 * This module replaces that method (on the prototype, so it reaches every consumer, also those of
 * apps installed with npm, where pnpm's patches do not apply). With autoCommit off it never commits:
 * - if a handler is registered for the group (KafkaStreams registers one), the handler decides the
 *   new position (the task is reset by its autoOffsetReset policy, with an event), and kafkajs
 *   continues from there;
 * - otherwise the consumer is reset locally to the log start or end its subscription asked for.
 * With autoCommit on (not used by Vltava), kafkajs' own behaviour is kept.
 */
import { createRequire } from 'node:module';

/** Returns the offset to continue from, or undefined to fall back to the local reset. */
export type OutOfRangeHandler = (topic: string, partition: number) => Promise<number | undefined>;

const handlers = new Map<string, Set<OutOfRangeHandler>>();

/** Registers a handler for a consumer group; returns its unregister function. */
export function onOffsetOutOfRange(groupId: string, handler: OutOfRangeHandler): () => void {
  let set = handlers.get(groupId);
  if (set === undefined) handlers.set(groupId, (set = new Set()));
  set.add(handler);
  return () => {
    set.delete(handler);
    if (set.size === 0) handlers.delete(groupId);
  };
}

interface OffsetManagerLike {
  readonly groupId: string;
  readonly autoCommit: boolean;
  readonly topicConfigurations: Record<string, { fromBeginning?: boolean }>;
  readonly resolvedOffsets: Record<string, Record<number, string>>;
  readonly cluster: { fetchTopicsOffset(topics: unknown[]): Promise<{ topic: string; partitions: { partition: number; offset: string }[] }[]> };
  committedOffsets(): Record<string, Record<number, string>>;
}

type SetDefaultOffset = (this: OffsetManagerLike, tp: { topic: string; partition: number }) => Promise<void>;

const MARK = Symbol.for('vltava.kafkajs.outOfRangeGuard');

/** Installs the guard once per kafkajs copy (idempotent). Returns true if it is in effect. */
export function installOutOfRangeGuard(): boolean {
  const require = createRequire(import.meta.url);
  // Resolve kafkajs' internal module from kafkajs' own location, so it is the copy the runtime uses.
  const kafkajsMain = require.resolve('kafkajs');
  const OffsetManager = createRequire(kafkajsMain)('./src/consumer/offsetManager/index.js') as { prototype: Record<string | symbol, unknown> };
  const proto = OffsetManager.prototype;
  if (proto[MARK] === true) return true;
  const original = proto.setDefaultOffset as SetDefaultOffset;
  if (typeof original !== 'function') return false;
  const guarded: SetDefaultOffset = async function (this: OffsetManagerLike, { topic, partition }) {
    if (this.autoCommit) return original.call(this, { topic, partition });
    let offset: number | undefined;
    for (const h of handlers.get(this.groupId) ?? []) {
      offset = await h(topic, partition);
      if (offset !== undefined) break;
    }
    let next: string;
    if (offset !== undefined) next = String(offset);
    else {
      const fromBeginning = this.topicConfigurations[topic]?.fromBeginning ?? false;
      const [t] = await this.cluster.fetchTopicsOffset([{ topic, fromBeginning, partitions: [{ partition }] }]);
      next = t?.partitions.find((p) => p.partition === partition)?.offset ?? (fromBeginning ? '-2' : '-1');
    }
    // Local bookkeeping only: the next fetch starts at `next`; nothing is committed to the group.
    this.committedOffsets()[topic] ??= {};
    this.committedOffsets()[topic]![partition] = next;
    this.resolvedOffsets[topic] ??= {};
    this.resolvedOffsets[topic]![partition] = next;
  };
  proto.setDefaultOffset = guarded;
  proto[MARK] = true;
  return true;
}

installOutOfRangeGuard();
