/**
 * The RecordCollector port: where a task's outputs, repartition records and changelog records go.
 * The runtime implements it with the task's (transactional) producer buffer; the test driver
 * with in-memory topics. Records are already serialized.
 */
export type RecordHeaders = Record<string, Buffer | string | undefined>;

export interface CollectedRecord {
  readonly topic: string;
  /** Explicit partition (changelog records: the task's partition); otherwise partitioned by key. */
  readonly partition?: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly timestamp: number;
  readonly headers?: RecordHeaders;
}

export interface RecordCollector {
  send(record: CollectedRecord): void;
}
