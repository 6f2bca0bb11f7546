import type { RecordCollector, RecordHeaders } from '@vltava/dsl';
import type { BytesLayer } from './bytesLayer.js';

/** `Buffer.from(key, 'latin1')` for a byte string (one char per byte); short ones copied char by char (no native call). */
function byteStringToBuffer(key: string): Buffer {
  const n = key.length;
  if (n > 32) return Buffer.from(key, 'latin1');
  const buf = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) buf[i] = key.charCodeAt(i);
  return buf;
}

/**
 * Change-logging: every write also becomes a changelog record in the task's collector, on the
 * changelog partition equal to the task's partition. `stripPrefix` chars of the store key are not
 * part of the changelog key (window and session stores drop their segment id).
 */
export class LoggingStore implements BytesLayer {
  constructor(
    private readonly inner: BytesLayer,
    private readonly collector: RecordCollector,
    readonly topic: string,
    readonly partition: number,
    private readonly stripPrefix: number,
    /** Sent on every record (the store's shape header); shared, never mutated. */
    private readonly headers: RecordHeaders,
  ) {}

  get(key: string): Buffer | undefined {
    return this.inner.get(key);
  }

  put(key: string, value: Buffer | null, timestamp: number, keyBytes?: Buffer): void {
    this.inner.put(key, value, timestamp);
    this.collector.send({
      topic: this.topic,
      partition: this.partition,
      key: this.stripPrefix === 0 ? (keyBytes ?? byteStringToBuffer(key)) : Buffer.from(key.slice(this.stripPrefix), 'latin1'),
      value,
      timestamp,
      headers: this.headers,
    });
  }

  range(from?: string, to?: string): Iterable<readonly [string, Buffer]> {
    return this.inner.range(from, to);
  }

  approximateCount(): number {
    return this.inner.approximateCount();
  }
}
