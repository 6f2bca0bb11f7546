/**
 * @kafkats/flow word count as its own process, for `pnpm bench:compare`.
 *
 * @kafkats/flow 0.12.0's `groupBy` only re-keys in process: it does not repartition, so a count after it
 * is a count per input partition (wrong as soon as a word appears in two partitions), and `through()`
 * also forwards in process. To get the same topology as Vltava and Kafka Streams we write the words to
 * a repartition topic with `to()` and count them from a second `stream()`: two sub-topologies, in one
 * app, under `processingGuarantee: 'exactly_once'`.
 */
import { flow } from '@kafkats/flow';
import { string, type Codec } from '@kafkats/client';
import { words } from '@vltava/example-word-count';
import { readAppConfig } from './appConfig.js';

const cfg = readAppConfig();
if (!cfg.repartitionTopic) throw new Error('flowApp needs repartitionTopic');

const int64: Codec<number> = {
  encode: (v: number) => {
    const b = Buffer.allocUnsafe(8);
    b.writeBigInt64BE(BigInt(v));
    return b;
  },
  decode: (b: Buffer) => Number(b.readBigInt64BE(0)),
};

/** Java's String.hashCode, for a deterministic key -> partition choice. */
const hashPartition = (key: string | null, _v: unknown, n: number): number => {
  let h = 0;
  const s = key ?? '';
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return (h & 0x7fffffff) % n;
};

const app = flow({
  applicationId: cfg.applicationId,
  client: { brokers: [cfg.brokers], clientId: cfg.applicationId, logLevel: 'error' },
  processingGuarantee: cfg.guarantee === 'exactly-once' ? 'exactly_once' : 'at_least_once',
  commitIntervalMs: cfg.commitIntervalMs,
  stateDir: cfg.stateDir,
  consumer: { sessionTimeoutMs: cfg.sessionTimeoutMs, autoOffsetReset: 'earliest' },
});

app
  .stream(cfg.inputTopic, { key: string(), value: string() })
  .flatMapValues((line) => (line === null ? [] : words(line)))
  .map((_k, w) => [w, w] as const)
  .to(cfg.repartitionTopic, { key: string(), value: string(), partitioner: hashPartition });

app
  .stream(cfg.repartitionTopic, { key: string(), value: string() })
  .groupByKey({ key: string(), value: string() })
  .count({ storeName: 'counts', key: string() })
  .toStream()
  .to(cfg.outputTopic, { key: string(), value: int64 });

const stop = (): void => {
  void app.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
console.log('STATE STARTING');
await app.start();
console.log('STATE RUNNING');
