/**
 * The bad-input run against the real broker, bounded for CI: every kind of bad record (the nine
 * malformed kinds and the poison kinds of issue 12) among valid traffic. The full run (10,000 of
 * each) is `pnpm chaos --fuzz` (docs/chaos-report.md).
 */
import test from 'ava';
import { useKafka } from '@vltava/kafka-local/testing';
import { ALL_KINDS, DEFAULT_LIMITS, fuzzTopicConfigs, runFuzz, type BadKind } from './fuzz.js';

const kafka = useKafka(test);

/** Every kind but `big-headers`, which stops the app today (the test below). */
const PASSING: readonly BadKind[] = ALL_KINDS.filter((k) => k !== 'big-headers');

async function topics(prefix: string, partitions: number) {
  const cfg = fuzzTopicConfigs(DEFAULT_LIMITS);
  const [commands, balances, journal, rejections, dlq] = await kafka().createTopics([
    { prefix: `${prefix}-commands`, partitions, config: cfg.commands },
    { prefix: `${prefix}-balances`, partitions },
    { prefix: `${prefix}-journal`, partitions },
    { prefix: `${prefix}-rejections`, partitions, config: cfg.rejections },
    { prefix: `${prefix}-dlq`, partitions },
  ]);
  return { topics: { commands: commands!, balances: balances!, journal: journal!, rejections: rejections! }, deadLetterTopic: dlq! };
}

test('[broker] bad input of every kind (malformed, null header values, huge keys, int32(0) keys committed and aborted, outputs the broker would refuse) is accounted for exactly once; valid traffic stays exact (kcat); no partition stalls; the app stays up', async (t) => {
  t.timeout(240_000);
  const k = kafka();
  const partitions = 3;
  const { topics: t4, deadLetterTopic } = await topics('fz', partitions);
  const report = await runFuzz({
    kafka: k.client(),
    brokers: k.brokers,
    topics: t4,
    deadLetterTopic,
    applicationId: k.uniqueName('fz-app'),
    partitions,
    valid: 3_000,
    perKind: 30,
    kinds: PASSING,
    sessionTimeoutMs: 6_000,
  });
  t.log(`bad records by kind: ${JSON.stringify(report.badByKind)}`);
  t.log(`${report.accounted}/${report.badSent} accounted for exactly once; dead-letter ${report.deadLettered}; longest stall ${report.stall.longestSteady?.ms ?? 0} ms (start-up ${report.stall.longestStartup?.ms ?? 0} ms); ${report.transactions.committed} committed / ${report.transactions.aborted} aborted transactions`);
  t.log(`valid: ${report.ledger.acceptedIds} accepted, ${report.ledger.rejectedIds} rejected, ${report.ledger.journalEntries} journal entries (read by ${report.reader})`);
  t.deepEqual(report.violations, []);
  t.is(report.accounted, report.badSent);
  t.deepEqual(Object.keys(report.badByKind).sort(), [...PASSING].sort(), 'every kind of bad input was sent');
  for (const kind of PASSING) t.true((report.badByKind[kind] ?? 0) >= 30, kind);
  t.is(report.reader, 'kcat');
  t.is(report.deadLettered, (report.byKind['output-too-large']?.viaDlq ?? 0) + (report.byKind['output-timestamp']?.viaDlq ?? 0));
  t.true(report.deadLettered >= 60, 'the production handler dead-lettered the outputs the broker would refuse');
  t.true(report.transactions.aborted >= 3);
  t.true((report.stall.longestSteady?.ms ?? 0) < 6_000);
  t.true(report.ledger.acceptedIds > 2_000);
  t.deepEqual(report.appErrors, []);
  t.true(report.ok);
});

// A known runtime bug (docs/chaos-report.md, "Bad-input run"): rejections that carry the input's
// headers, each just under the rejections topic's max.message.bytes, fail every commit of their task
// with MESSAGE_TOO_LARGE once two of them share a partition's batch (the commit's chunking counts
// key + value + 64 bytes, not the headers, against 512 KiB, not against the topic's limit), and the
// task retries forever. `failing` until the runtime is fixed; ava says when it starts passing.
test.failing('[broker] bad input: headers near the limit of the topic they are written to (big-headers) do not stall the app', async (t) => {
  t.timeout(120_000);
  const k = kafka();
  const partitions = 2;
  const { topics: t4, deadLetterTopic } = await topics('fzh', partitions);
  const report = await runFuzz({
    kafka: k.client(),
    brokers: k.brokers,
    topics: t4,
    deadLetterTopic,
    applicationId: k.uniqueName('fzh-app'),
    partitions,
    valid: 300,
    perKind: 10,
    kinds: ['big-headers'],
    sessionTimeoutMs: 6_000,
    catchUpMs: 25_000,
  });
  t.deepEqual(report.violations, []);
  t.is(report.accounted, report.badSent);
});
