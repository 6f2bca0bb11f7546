/**
 * The bytes store of one task: every store of the task lives in one database, each under its own
 * key prefix, so that one commit writes all the task's stores and their changelog checkpoints in
 * ONE atomic batch (see docs/state.md, "One database per task").
 */
export interface DbOp {
  /** Full key (store prefix + store key), as a byte string. */
  readonly key: string;
  /** `null` deletes. */
  readonly value: Buffer | null;
}

export interface TaskDb {
  /** True if data survives a process restart (LevelDB). */
  readonly persistent: boolean;
  /** Synchronous point read of a committed value. */
  get(key: string): Buffer | undefined;
  /** Applies the operations atomically: all or none. */
  write(ops: readonly DbOp[]): Promise<void>;
  /** Calls `onKeys` with the keys under `prefix` (prefix stripped), ascending, in batches. */
  loadKeys(prefix: string, onKeys: (keys: string[]) => void): Promise<void>;
  close(): Promise<void>;
}
