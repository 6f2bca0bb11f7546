/**
 * Word count on a real broker, in one process:
 *
 *   node examples/word-count/dist/cli.js [--seconds 20] [--rate 200] [--partitions 3]
 *
 * Uses KAFKA_BROKERS, else the broker of `pnpm kafka:up`. Creates `text-lines` and `word-counts`,
 * starts the app, produces sample text for `--seconds`, and prints the top counts every second,
 * read back from `word-counts` with a read_committed consumer (what a downstream reader sees).
 */
import { resolveBrokers } from '@vltava/kafka-local';
import { awaitCaughtUp } from '@vltava/kafka-local/testing';
import { Kafka, logLevel } from 'kafkajs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sampleLines, topCounts } from './sampleText.js';
import { createWordCountApp, createWordCountTopics } from './wordCountApp.js';

process.removeAllListeners('warning'); // kafkajs trips a harmless TimeoutNegativeWarning (docs/kafkajs-notes.md)
const args = process.argv.slice(2);
const num = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const seconds = num('seconds', 20);
const rate = num('rate', 200);
const partitions = num('partitions', 3);

const resolved = await resolveBrokers();
const kafka = new Kafka({ clientId: 'word-count-cli', brokers: resolved.brokers, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
await createWordCountTopics(admin, { partitions });
await admin.disconnect();

const app = createWordCountApp({ applicationId: 'word-count', brokers: resolved.brokers, stateDir: mkdtempSync(join(tmpdir(), 'word-count-')), logger: { info: () => undefined, warn: () => undefined, error: (m) => console.error(m) } });
await app.start();
console.log(`word-count: running on ${resolved.brokers.join(',')}; producing ${rate} lines/s for ${seconds} s`);

const counts = new Map<string, number>();
const reader = kafka.consumer({ groupId: `word-count-top-${Date.now()}`, readUncommitted: false });
await reader.connect();
await reader.subscribe({ topic: 'word-counts', fromBeginning: true });
await reader.run({
  eachMessage: async ({ message }) => {
    if (message.key && message.value && message.value.length === 8) counts.set(message.key.toString(), Number(message.value.readBigInt64BE(0)));
  },
});
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
let sent = 0;
const printer = setInterval(() => {
  const top = topCounts(counts, 8).map(([w, n]) => `${w} ${n}`).join(' · ');
  console.log(`lines ${sent}  top: ${top}`);
}, 1_000);
const end = Date.now() + seconds * 1000;
let seed = 1;
while (Date.now() < end) {
  const lines = sampleLines(Math.max(1, Math.round(rate / 10)), seed++);
  await producer.send({ topic: 'text-lines', messages: lines.map((value) => ({ value })) });
  sent += lines.length;
  await new Promise((r) => setTimeout(r, 100));
}
await producer.disconnect();
// Let the app commit everything, then close: the last print-out shows the final counts.
const checker = kafka.admin();
await checker.connect();
await awaitCaughtUp(checker, 'word-count', 'text-lines', 60_000);
await awaitCaughtUp(checker, 'word-count', 'word-count-counts-repartition', 60_000);
await checker.disconnect();
await app.close();
clearInterval(printer);
await reader.disconnect();
console.log(`word-count: ${sent} lines sent; final top: ${topCounts(counts, 8).map(([w, n]) => `${w} ${n}`).join(' · ')}`);
await resolved.release();
