/**
 * A FIFO async mutex: `run(fn)` starts fn after every earlier fn has settled. Each task has its own
 * (ActiveTask.lock): processing a fetched batch, punctuation, a commit and closing a task exclude each
 * other per task, while other tasks keep processing during one task's commit round trips.
 */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;

  run<T>(fn: () => Promise<T> | T): Promise<T> {
    this.queued++;
    const next = this.tail.then(fn, fn).finally(() => void this.queued--);
    this.tail = next.catch(() => undefined);
    return next;
  }

  /** Whether something holds or waits for the mutex. */
  get busy(): boolean {
    return this.queued > 0;
  }
}
