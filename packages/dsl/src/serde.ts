/**
 * A serde turns values of type T into bytes and back.
 *
 * Contract (shared by every package):
 * - `null` is never passed to a serde: a null key or value is a Kafka null (a tombstone for values)
 *   and is handled by the caller.
 * - `serialize` must be deterministic: equal values give equal bytes (stores and partitioning rely on it).
 * - A serde may throw on bad input; callers wrap the error (deserialization handler, ProcessingError).
 */
export interface Serde<T> {
  /** A short name for `describe()` and error messages, e.g. "string", "json", "msgpack". */
  readonly name: string;
  serialize(value: T, topic?: string): Buffer;
  deserialize(data: Buffer, topic?: string): T;
}
