/** Anything that holds uncommitted bytes: a task's stores (TaskStores.pendingBytes). */
export interface PendingBytes {
  pendingBytes(): number;
}

/**
 * One global cap on the memory held by overlays and record caches of all tasks of an instance.
 * Uncommitted writes must stay in memory until the Kafka transaction commits, so the only way to
 * free them is to commit: when `exceeded()` is true the runtime commits early (all tasks, or the
 * biggest first: `largest()`), instead of waiting for the commit interval.
 *
 * Check it per polled batch, or every N records: it sums pendingBytes() over the registered tasks.
 */
export class MemoryBudget {
  private readonly members = new Set<PendingBytes>();

  constructor(readonly maxBytes: number) {
    if (!(maxBytes > 0)) throw new RangeError(`MemoryBudget: maxBytes must be > 0, got ${maxBytes}`);
  }

  /** Registers a task's stores; returns the function that unregisters them (call it on close). */
  register(member: PendingBytes): () => void {
    this.members.add(member);
    return () => {
      this.members.delete(member);
    };
  }

  usedBytes(): number {
    let n = 0;
    for (const m of this.members) n += m.pendingBytes();
    return n;
  }

  /** True when the pending bytes of all registered tasks exceed the cap: commit now. */
  exceeded(): boolean {
    return this.usedBytes() > this.maxBytes;
  }

  /** The registered members, largest pending first (to commit the heaviest tasks first). */
  largest(): PendingBytes[] {
    return [...this.members].sort((a, b) => b.pendingBytes() - a.pendingBytes());
  }
}
