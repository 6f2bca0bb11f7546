/**
 * The bytes store of one task: every store of the task lives in one database, each under its own
 * key prefix, so that one commit writes all the task's stores and their changelog checkpoints in
 * ONE atomic batch (see docs/state.md, "One database per task"). Keys are passed as prefix + key so
 * that no per-read string concatenation is needed.
 */
export interface DbOp {
  /** The store's prefix, or META for metadata keys. */
  readonly prefix: string;
  readonly key: string;
  /** `null` deletes. */
  readonly value: Buffer | null;
}

/** Prefix of metadata keys (checkpoints, stream times, format): sorts before every store prefix. */
export const META = '\x00';

export interface TaskDb {
  /** True if data survives a process restart (LevelDB). */
  readonly persistent: boolean;
  /** Synchronous point read of a committed value. */
  get(prefix: string, key: string): Buffer | undefined;
  /** A point reader bound to one prefix (`get(prefix, key)` without the prefix lookup), if the backend has one. */
  reader?(prefix: string): (key: string) => Buffer | undefined;
  /** Applies the operations atomically: all or none. */
  write(ops: readonly DbOp[]): Promise<void>;
  /** Calls `onKeys` with the keys under `prefix` (prefix stripped), ascending, in batches. */
  loadKeys(prefix: string, onKeys: (keys: string[]) => void): Promise<void>;
  /** The keys under `prefix`, sorted, synchronously, if the backend can (memory); else undefined. */
  keysSync?(prefix: string): string[];
  /** Whether any key lies under `prefix` (persistent backends). */
  hasKeys?(prefix: string): Promise<boolean>;
  close(): Promise<void>;
}
