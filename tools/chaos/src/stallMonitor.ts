/**
 * Stalls, measured from outside the app: the group's committed offsets and the partitions' ends
 * (read_committed: kafkajs' admin lists offsets at the last stable offset) are sampled every
 * `intervalMs`. A partition is stalled while it has input (committed < end) and its committed offset
 * does not move; the stall ends when the offset moves or the partition is caught up. The longest
 * stall is what the bad-input run asserts to stay below the session timeout.
 */
import type { Admin } from 'kafkajs';

export interface Stall {
  readonly topic: string;
  readonly partition: number;
  readonly ms: number;
  /** Wall-clock start of the stall (ms since the epoch). */
  readonly since: number;
  /** The committed offset it stood at, and the partition end seen at its last sample. */
  readonly committed: number;
  readonly end: number;
  /** Still going when the monitor stopped. */
  readonly open: boolean;
}

export interface StallReport {
  /** When sampling started (ms since the epoch). */
  readonly startedAt: number;
  readonly samples: number;
  readonly failedSamples: number;
  readonly longest: Stall | undefined;
  /** The longest stall per `topic-partition`, in ms (0 when it never stalled for a whole sample). */
  readonly perPartition: Readonly<Record<string, number>>;
  /** Every stall over `reportOverMs`, longest first. */
  readonly over: readonly Stall[];
  /** The longest stall of a partition that had committed before (its first commit excluded: the app's start-up). */
  readonly longestSteady: Stall | undefined;
  /** The longest wait for a partition's first commit (start-up: join, task creation, first transaction). */
  readonly longestStartup: Stall | undefined;
}

interface PartitionState {
  committed: number;
  /** Start of the current stall, or undefined when progressing / caught up. */
  since: number | undefined;
  end: number;
  longest: number;
  /** The last sample at which it had moved or was caught up. */
  lastProgress: number;
}

export class StallMonitor {
  private readonly state = new Map<string, PartitionState>();
  private readonly stalls: Stall[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private samples = 0;
  private failedSamples = 0;
  private stopped = false;
  private startedAt = 0;

  constructor(
    private readonly admin: Admin,
    private readonly groupId: string,
    private readonly topics: readonly string[],
    private readonly opts: { intervalMs?: number; reportOverMs?: number; clock?: () => number } = {},
  ) {}

  start(): void {
    this.startedAt = this.now();
    const tick = (): void => {
      if (this.stopped) return;
      this.running = this.sample().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.opts.intervalMs ?? 250);
      });
    };
    tick();
  }

  /** The longest stall so far (open stalls included), for progress lines. */
  longestSoFar(): number {
    const now = this.now();
    let m = 0;
    for (const s of this.state.values()) m = Math.max(m, s.longest, s.since === undefined ? 0 : now - s.since);
    return m;
  }

  async stop(): Promise<StallReport> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    const now = this.now();
    for (const [tp, s] of this.state) {
      if (s.since !== undefined) this.close(tp, s, now, true);
    }
    const perPartition: Record<string, number> = {};
    for (const [tp, s] of this.state) perPartition[tp] = s.longest;
    const sorted = [...this.stalls].sort((a, b) => b.ms - a.ms);
    return { startedAt: this.startedAt, samples: this.samples, failedSamples: this.failedSamples, longest: sorted[0], longestSteady: sorted.find((x) => x.committed >= 0), longestStartup: sorted.find((x) => x.committed < 0), perPartition, over: sorted.filter((s) => s.ms > (this.opts.reportOverMs ?? 1_000)).slice(0, 20) };
  }

  private now(): number {
    return (this.opts.clock ?? Date.now)();
  }

  private close(tp: string, s: PartitionState, at: number, open: boolean): void {
    const ms = at - s.since!;
    const i = tp.lastIndexOf('-');
    this.stalls.push({ topic: tp.slice(0, i), partition: Number(tp.slice(i + 1)), ms, since: s.since!, committed: s.committed, end: s.end, open });
    s.longest = Math.max(s.longest, ms);
    s.since = undefined;
  }

  private async sample(): Promise<void> {
    try {
      for (const topic of this.topics) {
        // Ends first: a record that arrives after this read is not yet input the app could have had.
        const ends = await this.admin.fetchTopicOffsets(topic);
        const committed = await this.admin.fetchOffsets({ groupId: this.groupId, topics: [topic] });
        const at = this.now();
        const c = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
        for (const e of ends) {
          const tp = `${topic}-${e.partition}`;
          const end = Number(e.high);
          const off = c.get(e.partition) ?? -1;
          let s = this.state.get(tp);
          if (s === undefined) this.state.set(tp, (s = { committed: off, since: undefined, end, longest: 0, lastProgress: at }));
          const moved = off !== s.committed;
          s.end = end;
          if (moved || off >= end) {
            if (s.since !== undefined) this.close(tp, s, at, false);
            s.committed = off;
            s.lastProgress = at;
          } else if (s.since === undefined) {
            // Has input and did not move since the previous sample: counted from that sample (an
            // over-estimate by up to one interval, never an under-estimate).
            s.since = s.lastProgress;
          }
        }
      }
      this.samples++;
    } catch {
      // A coordinator moving or loading: the next sample will tell.
      this.failedSamples++;
    }
  }
}
