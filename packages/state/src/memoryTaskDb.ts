import type { DbOp, TaskDb } from './taskDb.js';

/** The in-memory bytes store: a Map; the sorted order lives in each store's key index. */
export class MemoryTaskDb implements TaskDb {
  readonly persistent = false;
  private readonly data = new Map<string, Buffer>();

  get(key: string): Buffer | undefined {
    return this.data.get(key);
  }

  write(ops: readonly DbOp[]): Promise<void> {
    for (const op of ops) {
      if (op.value === null) this.data.delete(op.key);
      else this.data.set(op.key, op.value);
    }
    return Promise.resolve();
  }

  loadKeys(prefix: string, onKeys: (keys: string[]) => void): Promise<void> {
    const keys: string[] = [];
    for (const k of this.data.keys()) if (k.startsWith(prefix)) keys.push(k.slice(prefix.length));
    keys.sort();
    if (keys.length > 0) onKeys(keys);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.data.clear();
    return Promise.resolve();
  }
}
