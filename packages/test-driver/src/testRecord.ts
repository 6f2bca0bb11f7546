import type { RecordHeaders } from '@vltava/dsl';

/** A record as piped into or read from a test topic. */
export interface TestRecord<K, V> {
  readonly key: K | null;
  readonly value: V | null;
  readonly timestamp: number;
  readonly headers?: RecordHeaders | undefined;
  /** Set on records read from an output topic. */
  readonly partition?: number;
  readonly offset?: number;
}
