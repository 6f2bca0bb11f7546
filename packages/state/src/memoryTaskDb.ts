import type { DbOp, TaskDb } from './taskDb.js';

/** The in-memory bytes store: one Map per store prefix; sorted order comes from the key indexes. */
export class MemoryTaskDb implements TaskDb {
  readonly persistent = false;
  private readonly maps = new Map<string, Map<string, Buffer>>();

  private map(prefix: string): Map<string, Buffer> {
    let m = this.maps.get(prefix);
    if (m === undefined) {
      m = new Map();
      this.maps.set(prefix, m);
    }
    return m;
  }

  get(prefix: string, key: string): Buffer | undefined {
    return this.maps.get(prefix)?.get(key);
  }

  reader(prefix: string): (key: string) => Buffer | undefined {
    const m = this.map(prefix);
    return (key) => m.get(key);
  }

  write(ops: readonly DbOp[]): Promise<void> {
    this.writeSync(ops);
    return Promise.resolve();
  }

  writeSync(ops: readonly DbOp[]): void {
    for (const op of ops) {
      if (op.value === null) this.maps.get(op.prefix)?.delete(op.key);
      else this.map(op.prefix).set(op.key, op.value);
    }
  }

  keysSync(prefix: string): string[] {
    return [...(this.maps.get(prefix)?.keys() ?? [])].sort();
  }

  loadKeys(prefix: string, onKeys: (keys: string[]) => void): Promise<void> {
    const keys = this.keysSync(prefix);
    if (keys.length > 0) onKeys(keys);
    return Promise.resolve();
  }

  close(): Promise<void> {
    for (const m of this.maps.values()) m.clear(); // readers hold their map
    this.maps.clear();
    return Promise.resolve();
  }
}
