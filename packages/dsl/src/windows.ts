/**
 * Window specifications, named as in Kafka Streams: `TimeWindows` (tumbling and hopping, aligned
 * to the epoch), `SlidingWindows`, `SessionWindows` and `JoinWindows`. All times are in
 * milliseconds of event time; "stream time" is the largest record timestamp an operator has seen.
 */
import { TopologyError } from './errors.js';
import { BufferConfig } from './timeLimitSuppress.js';
import type { Serde } from './serde.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

function nonNegative(n: unknown, what: string, where: string): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new TopologyError(`${where}: ${what} must be a non-negative integer number of milliseconds, got ${String(n)}.`);
  }
  return n;
}

function positive(n: unknown, what: string, where: string): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0) {
    throw new TopologyError(`${where}: ${what} must be a positive integer number of milliseconds, got ${String(n)}.`);
  }
  return n;
}

/**
 * Fixed-size windows aligned to the epoch: `[start, start + size)` with `start % advance === 0`.
 * Tumbling when `advance === size` (the default), hopping when `advance < size`. A record belongs
 * to every window whose interval contains its timestamp. A window accepts records until stream
 * time reaches `end + grace`; later records for it are dropped as late.
 */
export class TimeWindows {
  readonly kind = 'time' as const;
  private constructor(
    readonly sizeMs: number,
    readonly advanceMs: number,
    readonly graceMs: number,
  ) {}

  /** Tumbling windows of `sizeMs` that close as soon as stream time passes their end. */
  static ofSizeWithNoGrace(sizeMs: number): TimeWindows {
    return TimeWindows.ofSizeAndGrace(sizeMs, 0);
  }

  /** Tumbling windows of `sizeMs` that accept out-of-order records until stream time reaches end + `graceMs`. */
  static ofSizeAndGrace(sizeMs: number, graceMs: number): TimeWindows {
    const size = positive(sizeMs, 'sizeMs', 'TimeWindows');
    return new TimeWindows(size, size, nonNegative(graceMs, 'graceMs', 'TimeWindows'));
  }

  /** Hopping windows: a new window starts every `advanceMs` (0 < advanceMs <= sizeMs). */
  advanceBy(advanceMs: number): TimeWindows {
    const advance = positive(advanceMs, 'advanceMs', 'TimeWindows.advanceBy');
    if (advance > this.sizeMs) {
      throw new TopologyError(`TimeWindows.advanceBy: advanceMs (${advance}) must not exceed the window size (${this.sizeMs}); use a smaller advance or a larger size.`);
    }
    return new TimeWindows(this.sizeMs, advance, this.graceMs);
  }
}

/**
 * Sliding windows of a fixed time difference: two records fall in a common window when their
 * timestamps differ by at most `timeDifferenceMs`. Windows are `[start, start + timeDifference]`,
 * both ends inclusive (the Windowed key's `end` is `start + timeDifference`), and exist for every
 * distinct set of records, as in Kafka Streams: the window ending at each record and, when a later
 * record is near, the window starting just after it.
 */
export class SlidingWindows {
  readonly kind = 'sliding' as const;
  private constructor(
    readonly timeDifferenceMs: number,
    readonly graceMs: number,
  ) {}

  static ofTimeDifferenceWithNoGrace(timeDifferenceMs: number): SlidingWindows {
    return SlidingWindows.ofTimeDifferenceAndGrace(timeDifferenceMs, 0);
  }

  static ofTimeDifferenceAndGrace(timeDifferenceMs: number, graceMs: number): SlidingWindows {
    return new SlidingWindows(positive(timeDifferenceMs, 'timeDifferenceMs', 'SlidingWindows'), nonNegative(graceMs, 'graceMs', 'SlidingWindows'));
  }
}

/**
 * Session windows: records of a key closer than `inactivityGapMs` to each other form one session
 * `[first, last]` (both inclusive); a record that bridges two sessions merges them. A session
 * accepts records until stream time passes its end + grace.
 */
export class SessionWindows {
  readonly kind = 'session' as const;
  private constructor(
    readonly inactivityGapMs: number,
    readonly graceMs: number,
  ) {}

  static ofInactivityGapWithNoGrace(inactivityGapMs: number): SessionWindows {
    return SessionWindows.ofInactivityGapAndGrace(inactivityGapMs, 0);
  }

  static ofInactivityGapAndGrace(inactivityGapMs: number, graceMs: number): SessionWindows {
    return new SessionWindows(positive(inactivityGapMs, 'inactivityGapMs', 'SessionWindows'), nonNegative(graceMs, 'graceMs', 'SessionWindows'));
  }
}

/**
 * The window of a stream-stream join: a left record at `t` joins right records with timestamps in
 * `[t - before, t + after]` (default before = after = timeDifference). Records are kept until
 * stream time passes their window + grace; unmatched left/outer results are emitted then.
 */
export class JoinWindows {
  private constructor(
    readonly beforeMs: number,
    readonly afterMs: number,
    readonly graceMs: number,
  ) {}

  static ofTimeDifferenceWithNoGrace(timeDifferenceMs: number): JoinWindows {
    return JoinWindows.ofTimeDifferenceAndGrace(timeDifferenceMs, 0);
  }

  static ofTimeDifferenceAndGrace(timeDifferenceMs: number, graceMs: number): JoinWindows {
    const d = nonNegative(timeDifferenceMs, 'timeDifferenceMs', 'JoinWindows');
    return new JoinWindows(d, d, nonNegative(graceMs, 'graceMs', 'JoinWindows'));
  }

  /** Right records up to `beforeMs` older than the left record join it. */
  before(beforeMs: number): JoinWindows {
    const b = nonNegative(beforeMs, 'beforeMs', 'JoinWindows.before');
    return new JoinWindows(b, this.afterMs, this.graceMs);
  }

  /** Right records up to `afterMs` newer than the left record join it. */
  after(afterMs: number): JoinWindows {
    const a = nonNegative(afterMs, 'afterMs', 'JoinWindows.after');
    return new JoinWindows(this.beforeMs, a, this.graceMs);
  }

  get sizeMs(): number {
    return this.beforeMs + this.afterMs;
  }
}

/** What the suppress operator needs to know about a windowed KTable. @internal */
export interface WindowInfo {
  /** How long after a window's end (its `end` field) it may still change: grace (+ gap for sessions). */
  readonly closeAfterMs: number;
  /**
   * Whether the window's `end` is inclusive (sliding and session windows): the aggregation still
   * updates a window while end >= stream time - closeAfterMs, so 'on-window-close' emits only once
   * stream time passes end + closeAfterMs.
   */
  readonly inclusiveEnd: boolean;
  /** How long the aggregation's store keeps a window (ms of stream time): how long suppress remembers it emitted one. */
  readonly retentionMs: number;
  /** The serde of the inner (unwindowed) key. */
  readonly keySerde: Serde<any>;
}

/** `KTable.suppress(Suppressed.untilWindowCloses({ name }))`: one final result per window. */
export interface WindowCloseSuppressed {
  readonly kind: 'untilWindowCloses';
  /** Required: the buffer is a change-logged store named `<name>` (changelog `<appId>-<name>-changelog`). */
  readonly name: string;
  /** Default unbounded; a bounded buffer must `shutDownWhenFull()`. */
  readonly buffer?: BufferConfig;
}

/** `KTable.suppress(Suppressed.untilTimeLimit(ms, bufferConfig, { name }))`: at most one update per key per time limit. */
export interface TimeLimitSuppressed {
  readonly kind: 'untilTimeLimit';
  readonly name: string;
  readonly timeLimitMs: number;
  readonly buffer: BufferConfig;
}

export type Suppressed = WindowCloseSuppressed | TimeLimitSuppressed;

export const Suppressed = {
  /**
   * Holds every update of a window until stream time passes its end + grace, then emits the final
   * result once. The buffer is a change-logged store, so under exactly-once the final results
   * survive crashes exactly once. Unbounded: it holds one entry per open window.
   */
  untilWindowCloses(opts: { readonly name: string; readonly buffer?: BufferConfig }): WindowCloseSuppressed {
    const buffer = opts?.buffer;
    if (buffer !== undefined) {
      if (!(buffer instanceof BufferConfig)) throw new TopologyError('Suppressed.untilWindowCloses: buffer must be a BufferConfig, e.g. BufferConfig.maxRecords(100_000).shutDownWhenFull().');
      const bounded = buffer.maxRecords !== Number.POSITIVE_INFINITY || buffer.maxBytes !== Number.POSITIVE_INFINITY;
      if (bounded && buffer.whenFull !== 'shut-down') {
        throw new TopologyError('Suppressed.untilWindowCloses: a bounded buffer must shutDownWhenFull() (emitting early would not be a final result), e.g. BufferConfig.maxRecords(100_000).shutDownWhenFull().');
      }
      return { kind: 'untilWindowCloses', name: opts.name, ...(bounded ? { buffer } : {}) };
    }
    return { kind: 'untilWindowCloses', name: opts?.name };
  },
  /**
   * Holds the latest update of each key until stream time reaches the time of the key's first
   * buffered update + `timeLimitMs`, then emits it (Kafka Streams' `Suppressed.untilTimeLimit`).
   * Works on any table, windowed or not. `bufferConfig` bounds the buffer (`BufferConfig.maxRecords(n)`,
   * `.maxBytes(n)`, `.unbounded()`; `.emitEarlyWhenFull()` / `.shutDownWhenFull()`). The buffer is
   * the change-logged store `<name>`.
   */
  untilTimeLimit(timeLimitMs: number, bufferConfig: BufferConfig, opts: { readonly name: string }): TimeLimitSuppressed {
    if (typeof timeLimitMs !== 'number' || !(timeLimitMs >= 0)) {
      throw new TopologyError(`Suppressed.untilTimeLimit: the time limit must be a non-negative number of ms, got ${String(timeLimitMs)}.`);
    }
    if (!(bufferConfig instanceof BufferConfig)) {
      throw new TopologyError('Suppressed.untilTimeLimit: pass a BufferConfig, e.g. BufferConfig.maxRecords(10_000).emitEarlyWhenFull() or BufferConfig.unbounded().');
    }
    return { kind: 'untilTimeLimit', name: opts?.name, timeLimitMs, buffer: bufferConfig };
  },
} as const;
