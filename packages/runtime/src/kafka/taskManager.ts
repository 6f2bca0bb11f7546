/**
 * THE TASK MANAGER: the one place that creates and closes tasks (Kafka Streams' TaskManager).
 *
 * It keeps the set of tasks the group assigned to this member, and it alone moves tasks through
 * their lifecycle (ActiveTask's TASK_TRANSITIONS):
 * - an assignment closes tasks no longer assigned (clean: final commit, then release) and creates
 *   the newly assigned ones; a new member id (the group had expelled us) closes every task dirty
 *   and starts the assigned ones afresh;
 * - a task is created only for an id in the current assignment (`create` throws otherwise): a task
 *   this member no longer owns can never be restarted, so a restart cannot fence the real owner;
 * - a new instance of a task starts only after the previous instance released its state directory
 *   (`ActiveTask.closed`), so two copies of one task never run in one process;
 * - a failed commit or start closes the task dirty and creates a new instance, if still assigned;
 * - a fenced task (TaskMigratedError) closes every task dirty and asks for a rejoin, as Kafka
 *   Streams does (handleLostAll + enforceRebalance): the group then says who owns what.
 * While a task starts (fence, offsets, restore) its partitions are paused, so the consumer's
 * eachBatch never waits on a restore (kafkajs heartbeats from that loop).
 */
import { StreamsError, TaskMigratedError } from '@vltava/dsl';
import type { ActiveTask, TaskMover } from './activeTask.js';
import { isFencingError } from './kafkaErrors.js';

/** What the manager needs from the app (KafkaStreams implements it). */
export interface TaskManagerHost {
  /** A new, not yet started instance of the task. */
  newTask(id: string): ActiveTask;
  /** Serialises processing and commits of all tasks. */
  /** Input partitions of a task, to pause while it starts and resume when it runs. */
  pause(task: ActiveTask): void;
  resume(task: ActiveTask): void;
  /** Points the consumer at the task's position. */
  seek(task: ActiveTask): void;
  /** Asks the group to rebalance (kafkajs has no enforceRebalance; the host emulates it). */
  requestRejoin(reason: string): void;
  /** Whether the app still processes (RUNNING or REBALANCING). */
  isActive(): boolean;
  /** A failure was retried for longer than brokerRetryTimeoutMs, or is not retriable. */
  giveUp(err: unknown, taskId: string): boolean;
  fail(err: unknown): Promise<void>;
  logger: { warn(message: string, meta?: Readonly<Record<string, unknown>>): void };
  emitCreated(id: string): void;
  emitRunning(task: ActiveTask): void;
  emitRevoked(id: string): void;
  emitMigrated(id: string, reason: string): void;
  emitError(err: unknown, id: string): void;
  /** Called whenever the set of running tasks may have changed. */
  tasksChanged(): void;
  /** Before a task's active instance starts: a standby copy of it in this process lets go of its directory. */
  beforeStart?(id: string): Promise<void>;
}

export class TaskManager {
  /** The tasks the group assigned to this member, as of the last assignment. */
  private assigned = new Set<string>();
  /** Live instances (created, restoring, running, suspended). */
  private readonly live = new Map<string, ActiveTask>();
  /** The newest instance per task id, closed or not: a new instance waits until it is released. */
  private readonly newest = new Map<string, ActiveTask>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private shuttingDown = false;

  constructor(private readonly host: TaskManagerHost) {}

  get(id: string): ActiveTask | undefined {
    return this.live.get(id);
  }

  tasks(): IterableIterator<ActiveTask> {
    return this.live.values();
  }

  ids(): string[] {
    return [...this.live.keys()];
  }

  running(): ActiveTask[] {
    return [...this.live.values()].filter((t) => t.state === 'running');
  }

  /** True when every assigned task runs. */
  allRunning(): boolean {
    for (const id of this.assigned) if (this.live.get(id)?.state !== 'running') return false;
    return true;
  }

  /** Resolves once the newest active instance of `id` (if any) has released everything. */
  closedOf(id: string): Promise<void> {
    return this.newest.get(id)?.closed ?? Promise.resolve();
  }

  isAssigned(id: string): boolean {
    return this.assigned.has(id);
  }

  /** A new assignment from the group. `rejoined`: our member id changed (we had been expelled). */
  assign(wanted: ReadonlySet<string>, rejoined: boolean): void {
    this.assigned = new Set(wanted);
    for (const [id, task] of [...this.live]) {
      if (wanted.has(id) && !rejoined) continue;
      this.live.delete(id);
      this.host.emitRevoked(id);
      // A new member id: others may have owned our tasks meanwhile; nothing we hold can be trusted.
      if (rejoined) void this.closeDirty(task, 'revoke');
      else void this.closeClean(task, 'revoke');
    }
    for (const id of wanted) if (!this.live.has(id)) this.create(id);
    this.host.tasksChanged();
  }

  /** Creates and starts a task of the current assignment. Throws for any other id. */
  private create(id: string): void {
    if (!this.assigned.has(id)) throw new StreamsError(`internal: task ${id} is not assigned to this member and may not be created`);
    if (this.live.has(id)) throw new StreamsError(`internal: task ${id} already has a live instance`);
    const task = this.host.newTask(id);
    const previous = this.newest.get(id);
    this.live.set(id, task);
    this.newest.set(id, task);
    this.host.emitCreated(id);
    this.host.pause(task);
    const started = Promise.all([previous?.closed, this.host.beforeStart?.(id)]).then(() => {
      if (task.state !== 'created') return Promise.reject(new Error(`task ${id} was closed before it started`));
      return task.start();
    });
    task.ready = started;
    started.then(
      () => {
        if (this.live.get(id) !== task || task.state !== 'running') return;
        // kafkajs may have fetched from offsets read before this task fenced its predecessor, or past
        // records of an aborted commit: point it at the committed position, then let it fetch.
        this.host.seek(task);
        this.host.resume(task);
        this.host.emitRunning(task);
        this.host.tasksChanged();
      },
      (err: unknown) => void this.onStartFailure(task, err),
    );
  }

  private async onStartFailure(task: ActiveTask, err: unknown): Promise<void> {
    const id = task.id;
    const current = this.live.get(id) === task;
    if (current) this.live.delete(id);
    await task.closeDirty('start-failure');
    if (!current || this.shuttingDown || !this.host.isActive()) return;
    if (isFencingError(err) || err instanceof TaskMigratedError) {
      // Someone else initialised this task's producer after us: let the group say who owns it.
      this.host.emitMigrated(id, (err as Error).message);
      this.lostAll(`task ${id} was fenced while starting`);
      return;
    }
    this.host.emitError(err, id);
    if (this.host.giveUp(err, id)) {
      await this.host.fail(err);
      return;
    }
    this.host.logger.warn(`task ${id} failed to start, retrying: ${(err as Error).message}`);
    this.retryLater(id);
  }

  /** Re-creates a task after a failure, if the group still assigns it to us by then. */
  private retryLater(id: string, delayMs = 500): void {
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      if (this.shuttingDown || !this.host.isActive() || this.live.has(id) || !this.assigned.has(id)) return;
      this.create(id);
      this.host.tasksChanged();
    }, delayMs);
    this.retryTimers.add(timer);
  }

  /**
   * A commit failed (under the task's lock; the transaction was aborted and the overlays dropped). A fenced
   * task means another member or producer owns the task now: every task is closed dirty and the
   * group is asked for a new assignment. Otherwise the task restarts from its committed offsets, if
   * it is still assigned to us.
   */
  async onCommitFailure(task: ActiveTask, err: unknown): Promise<void> {
    const id = task.id;
    if (this.live.get(id) === task) this.live.delete(id);
    if (err instanceof TaskMigratedError) {
      await task.closeDirty('fencing');
      this.host.logger.warn(err.message, { taskId: id });
      this.host.emitMigrated(id, err.message);
      this.lostAll(`task ${id} was fenced`);
      return;
    }
    await task.closeDirty('commit-failure');
    this.host.emitError(err, id);
    if (this.host.giveUp(err, id)) {
      await this.host.fail(err);
      return;
    }
    this.host.logger.warn(`commit of task ${id} failed (${(err as Error).message}); restarting it from the committed offsets`);
    this.host.tasksChanged();
    this.retryLater(id, 0);
  }

  /**
   * Kafka Streams' handleLostAll: close every task dirty (called under a task's lock or from a start
   * failure), forget the assignment, and ask the group to rebalance; its answer re-creates the tasks
   * that are still ours.
   */
  private lostAll(reason: string): void {
    this.assigned = new Set();
    for (const [id, task] of [...this.live]) {
      this.live.delete(id);
      this.host.emitRevoked(id);
      void this.closeDirty(task, 'fencing');
    }
    this.host.tasksChanged();
    this.host.requestRejoin(reason);
  }

  /** REPLACE_THREAD: every task closed dirty; the caller starts a new consumer, whose assignment re-creates them. */
  closeAllDirty(): void {
    this.assigned = new Set();
    for (const [id, task] of [...this.live]) {
      this.live.delete(id);
      this.host.emitRevoked(id);
      void this.closeDirty(task, 'fatal');
    }
  }

  /** Clean close: the final commit under the task's lock, the release outside it. Dirty if the commit fails. */
  private async closeClean(task: ActiveTask, by: 'revoke' | 'shutdown'): Promise<void> {
    // Not running yet (restoring): nothing to commit; closing it interrupts the restore.
    await task.lock.run(async () => {
      if (task.state !== 'running') return;
      try {
        await task.closeCleanCommit(by);
      } catch (err) {
        if (err instanceof TaskMigratedError) this.host.emitMigrated(task.id, err.message);
        else this.host.logger.warn(`task ${task.id} could not commit on close: ${(err as Error).message}`);
        task.abandon(err instanceof TaskMigratedError ? 'fencing' : 'commit-failure');
      }
    });
    await task.closeDirty(by); // releases; a no-op state move if it already closed
    this.host.resume(task);
  }

  private async closeDirty(task: ActiveTask, by: TaskMover): Promise<void> {
    await task.lock.run(() => {
      if (task.state !== 'closed') task.abandon(by);
    });
    await task.closeDirty(by);
    this.host.resume(task);
  }

  /** Shutdown: every task committed and closed (the caller leaves the group afterwards). */
  async closeAll(): Promise<void> {
    this.shuttingDown = true;
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
    const closing = [...this.live.values()].map((task) => this.closeClean(task, 'shutdown'));
    this.live.clear();
    await Promise.allSettled(closing);
    await Promise.allSettled([...this.newest.values()].map((t) => t.closed));
  }

  /** A fatal error: every task closed dirty, nothing more is created. */
  async failAll(): Promise<void> {
    this.shuttingDown = true;
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
    const tasks = [...this.live.values()];
    this.live.clear();
    await Promise.allSettled(tasks.map((t) => t.closeDirty('fatal')));
  }
}
