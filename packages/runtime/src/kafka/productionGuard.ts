/**
 * Records the broker would reject, caught before they are sent (Kafka Streams' ProductionExceptionHandler).
 *
 * A record the broker rejects fails its whole produce request, and in a transaction the whole
 * commit: retried, it fails again, and the task never moves (a poison pill). So every record is
 * screened against its topic's limits, read once at start (describeConfigs):
 * - its size against `max.message.bytes` (a record batch of one record must fit);
 * - a null key on a compacted topic;
 * - its timestamp against `message.timestamp.before.max.ms` / `after.max.ms` (CreateTime topics; Kafka
 *   4 rejects timestamps more than an hour in the future by default).
 * A rejected record goes to `productionExceptionHandler`: `'fail'` (default) stops the app with an
 * error that names the record and what to change; `'continue'` drops it (a `task.record.dropped`
 * event); `{ deadLetterTopic }` writes a description of it (its key when it fits, no value, and
 * `vltava.error.*` headers) to that topic in the same transaction. Changelog records are never
 * dropped: losing one would make the store disagree with its changelog, so they always fail.
 */
import { StreamsError, type CollectedRecord } from '@vltava/dsl';
import type { Admin } from 'kafkajs';

export type ProductionExceptionHandler = 'fail' | 'continue' | { readonly deadLetterTopic: string };

export interface TopicLimits {
  readonly maxMessageBytes: number;
  readonly compacted: boolean;
  /** Timestamps older than now - this are rejected (CreateTime only); Infinity when unlimited. */
  readonly timestampBeforeMaxMs: number;
  /** Timestamps newer than now + this are rejected (CreateTime only); Infinity when unlimited. */
  readonly timestampAfterMaxMs: number;
}

const UNLIMITED: TopicLimits = { maxMessageBytes: 1_048_588, compacted: false, timestampBeforeMaxMs: Infinity, timestampAfterMaxMs: Infinity };

/** Reads the limits of every topic the app writes. */
export async function readTopicLimits(admin: Admin, topics: readonly string[]): Promise<Map<string, TopicLimits>> {
  const out = new Map<string, TopicLimits>();
  if (topics.length === 0) return out;
  const names = ['max.message.bytes', 'cleanup.policy', 'message.timestamp.type', 'message.timestamp.before.max.ms', 'message.timestamp.after.max.ms', 'message.timestamp.difference.max.ms'];
  const described = await admin.describeConfigs({ resources: topics.map((name) => ({ type: 2 /* TOPIC */, name, configNames: names })), includeSynonyms: false });
  for (const r of described.resources) {
    const get = (n: string): string | undefined => r.configEntries.find((e) => e.configName === n)?.configValue;
    const num = (n: string): number => {
      const v = Number(get(n));
      return Number.isFinite(v) && v >= 0 && v < Number.MAX_SAFE_INTEGER ? v : Infinity;
    };
    const createTime = (get('message.timestamp.type') ?? 'CreateTime') === 'CreateTime';
    const diff = num('message.timestamp.difference.max.ms');
    out.set(r.resourceName, {
      maxMessageBytes: Number(get('max.message.bytes') ?? UNLIMITED.maxMessageBytes),
      compacted: (get('cleanup.policy') ?? '').split(',').includes('compact'),
      timestampBeforeMaxMs: createTime ? Math.min(num('message.timestamp.before.max.ms'), diff) : Infinity,
      timestampAfterMaxMs: createTime ? Math.min(num('message.timestamp.after.max.ms'), diff) : Infinity,
    });
  }
  return out;
}

/** The header of a v2 record batch. */
export const BATCH_HEADER_BYTES = 61;

/** Bytes of the record in a batch of its own (record batch v2: 61 bytes of batch header). */
export function recordBatchBytes(r: CollectedRecord): number {
  let headers = 0;
  if (r.headers !== undefined) {
    // for...in, not Object.entries: called twice per produced record, and most headers are empty
    const h = r.headers;
    for (const k in h) {
      if (!Object.hasOwn(h, k)) continue;
      const v = h[k];
      headers += Buffer.byteLength(k) + (v === undefined || v === null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length) + 10;
    }
  }
  return BATCH_HEADER_BYTES + 21 + (r.key?.length ?? 0) + (r.value?.length ?? 0) + headers;
}

/** Why the broker would reject `r`, or undefined. */
export function rejectionReason(r: CollectedRecord, limits: TopicLimits | undefined, now: number): string | undefined {
  if (limits === undefined) return undefined;
  const size = recordBatchBytes(r);
  if (size > limits.maxMessageBytes) return `the record is ${size} bytes, above the topic's max.message.bytes (${limits.maxMessageBytes})`;
  if (limits.compacted && r.key === null) return 'a record without a key cannot go to a compacted topic';
  if (r.timestamp < now - limits.timestampBeforeMaxMs) return `its timestamp ${r.timestamp} is older than the topic accepts (message.timestamp.before.max.ms = ${limits.timestampBeforeMaxMs})`;
  if (r.timestamp > now + limits.timestampAfterMaxMs) return `its timestamp ${r.timestamp} is further in the future than the topic accepts (message.timestamp.after.max.ms = ${limits.timestampAfterMaxMs})`;
  return undefined;
}

export class ProductionError extends StreamsError {
  constructor(
    message: string,
    readonly topic: string,
    taskId: string,
  ) {
    super(message, { retriable: false, taskId });
  }
}

export interface ScreenContext {
  readonly taskId: string;
  readonly handler: ProductionExceptionHandler;
  readonly limits: ReadonlyMap<string, TopicLimits>;
  /** Changelog topics: their records are never dropped. */
  readonly changelogTopics: ReadonlySet<string>;
  readonly now: number;
  readonly onDropped: (record: CollectedRecord, reason: string) => void;
}

/**
 * Screens the records of a commit in place. Returns the records to send (the same array when
 * nothing was rejected, so the common path allocates nothing).
 */
export function screenRecords(records: CollectedRecord[], ctx: ScreenContext): CollectedRecord[] {
  let out: CollectedRecord[] | undefined;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const reason = rejectionReason(r, ctx.limits.get(r.topic), ctx.now);
    if (reason === undefined) {
      out?.push(r);
      continue;
    }
    out ??= records.slice(0, i);
    const what = `task ${ctx.taskId}: a record for ${r.topic} would be rejected by the broker: ${reason}`;
    if (ctx.changelogTopics.has(r.topic) || ctx.handler === 'fail') {
      throw new ProductionError(
        `${what}. ${ctx.changelogTopics.has(r.topic) ? 'A changelog record cannot be skipped: keep store values smaller or raise the changelog topic\'s limit.' : "Raise the topic's limit, fix the records, or set productionExceptionHandler to 'continue' or { deadLetterTopic } to skip such records."}`,
        r.topic,
        ctx.taskId,
      );
    }
    if (ctx.handler === 'continue') {
      ctx.onDropped(r, reason);
      continue;
    }
    const keyFits = (r.key?.length ?? 0) <= 16_384;
    out.push({
      topic: ctx.handler.deadLetterTopic,
      key: keyFits ? r.key : null,
      value: null,
      timestamp: ctx.now,
      headers: {
        'vltava.error.message': reason.slice(0, 1000),
        'vltava.error.class': 'ProductionError',
        'vltava.error.topic': r.topic,
        'vltava.error.record.bytes': String(recordBatchBytes(r)),
        'vltava.error.record.timestamp': String(r.timestamp),
      },
    });
  }
  return out ?? records;
}
