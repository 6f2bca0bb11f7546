import { decodeTs, encodeTs, TS_WIDTH } from './timeKey.js';

/**
 * Time segments of a window or session store. A store key is
 * `segmentId(8 bytes) + key + time fields`, where the segment id is `floor(t / segmentIntervalMs)` of
 * the store's defining time (window start; session end). Retention works on observed stream time
 * (the greatest defining time written): entries with t <= streamTime - retentionMs are expired.
 * Reads hide them at once; whole expired segments are deleted from the database in the next
 * commit batch (without changelog records: the changelog topic has its own retention).
 */
export class Segments {
  streamTime = Number.NEGATIVE_INFINITY;

  constructor(
    readonly retentionMs: number,
    readonly segmentIntervalMs: number,
    /** Where the defining time sits in a changelog key, counted from the end (in chars). */
    private readonly timeFromEnd: number,
  ) {}

  segmentOf(t: number): number {
    return Math.floor(t / this.segmentIntervalMs);
  }

  prefix(t: number): string {
    return encodeTs(this.segmentOf(t));
  }

  observe(t: number): void {
    if (t > this.streamTime) this.streamTime = t;
  }

  /** The smallest live defining time. */
  minLive(): number {
    return this.streamTime - this.retentionMs + 1;
  }

  /** Store keys below this bound lie in fully expired segments. */
  expiredBound(): string | undefined {
    if (this.streamTime === Number.NEGATIVE_INFINITY) return undefined;
    return encodeTs(this.segmentOf(this.minLive()));
  }

  /** The defining time of a changelog key (store key without the segment id). */
  timeOfChangelogKey(k: string): number {
    return decodeTs(k, k.length - this.timeFromEnd);
  }

  /** Store key of a changelog key: prepends the segment id. */
  storeKey(changelogKey: string, t: number): string {
    return this.prefix(t) + changelogKey;
  }
}

export const SEGMENT_PREFIX = TS_WIDTH;

/** Segment interval used when a store does not set one: half the retention, at least 1 ms (so a fetch visits at most three segments). */
export function defaultSegmentInterval(retentionMs: number): number {
  return Math.max(1, Math.floor(retentionMs / 2));
}
