/**
 * A standby task (Kafka Streams' num.standby.replicas): a warm copy of another member's task's
 * stores in this instance's state directory, kept close to the changelog's end, so that when the
 * task moves here the new active restores only the tail.
 *
 * It opens the task's stores (LevelDB, the same directory and lock an active instance would use)
 * and, every `pollMs`, replays the changelog from its checkpoint to the end (read_committed, through
 * the same ChangelogReader as a restore). It never processes records or writes to Kafka. The
 * checkpoint it writes is the same kind an active task writes, so an active instance started later
 * on the same directory restores from there.
 */
import { openTaskStores, type TaskStores } from '@vltava/state';
import type { Admin, Kafka } from 'kafkajs';
import type { Topology } from '@vltava/dsl';
import type { ResolvedConfig } from '../config.js';
import { parseTaskId } from '@vltava/executor';
import { KafkaChangelogReader } from './kafkaChangelogReader.js';

export interface StandbyTaskDeps {
  readonly config: ResolvedConfig;
  readonly topology: Topology;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly pollMs: number;
  /** After each round that applied records. */
  readonly onUpdated?: (task: StandbyTask, applied: number) => void;
}

export class StandbyTask {
  readonly id: string;
  readonly partition: number;
  readonly subtopology: number;
  /** Changelog records applied since it started. */
  applied = 0;
  /** Rounds completed (a round reads every store to the end it saw at its start). */
  rounds = 0;
  private stores: TaskStores | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  readonly closed: Promise<void>;
  private markClosed!: () => void;

  constructor(
    id: string,
    private readonly deps: StandbyTaskDeps,
  ) {
    this.id = id;
    const { subtopology, partition } = parseTaskId(id);
    this.subtopology = subtopology;
    this.partition = partition;
    this.closed = new Promise((r) => (this.markClosed = r));
  }

  /** Starts following the changelogs; `after` resolves when an earlier instance of the task is gone. */
  start(after: Promise<unknown> = Promise.resolve()): void {
    this.loop = after.then(() => this.run()).catch((e: unknown) => {
      if (!this.stopped) this.deps.config.logger.warn(`standby task ${this.id} stopped: ${(e as Error).message}`);
    });
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    const { config, topology, kafka, admin } = this.deps;
    const sub = topology.subtopologies[this.subtopology]!;
    const specs = sub.stores.map((name) => topology.stores.get(name)!).filter((s) => s.logging);
    if (specs.length === 0) return;
    this.stores = await openTaskStores({
      applicationId: config.applicationId,
      taskId: this.id,
      partition: this.partition,
      specs,
      collector: { send: () => undefined },
      backend: 'leveldb',
      stateDir: config.stateDir,
      cacheMaxBytes: 0,
    });
    const reader = new KafkaChangelogReader({ kafka, admin, applicationId: config.applicationId });
    while (!this.stopped) {
      let round = 0;
      await this.stores.restore(reader, {
        onBatchRestored: () => {
          if (this.stopped) throw new Error('standby closed');
        },
        onRestoreEnd: (p) => (round += p.restored),
      });
      this.applied += round;
      this.rounds++;
      if (round > 0) this.deps.onUpdated?.(this, round);
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.deps.pollMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** The changelog checkpoint of a store (the offset of the last record applied), if any. */
  checkpoint(store: string): number | undefined {
    return this.stores?.checkpoint(store);
  }

  /** Stops following and releases the stores and the directory lock. */
  async close(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.wake?.();
      await this.loop?.catch(() => undefined);
      await this.stores?.close().catch(() => undefined);
      this.markClosed();
    }
    await this.closed;
  }
}
