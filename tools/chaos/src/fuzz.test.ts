/**
 * The bad-input run against the real broker, bounded for CI: every kind of bad record (the nine
 * malformed kinds and the poison kinds of issue 12) among valid traffic. The full run (10,000 of
 * each) is `pnpm chaos --fuzz` (docs/chaos-report.md).
 */
import test from 'ava';
import { useKafka } from '@vltava/kafka-local/testing';
import { ALL_KINDS, DEFAULT_LIMITS, fuzzTopicConfigs, runFuzz, type BadKind } from './fuzz.js';

const kafka = useKafka(test);

/** Every kind (big-headers stopped the app before runtime commit 6a7d8a2: docs/chaos-report.md). */
const PASSING: readonly BadKind[] = ALL_KINDS;

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

test('[broker] bad input of every kind (malformed, null header values, huge keys, headers near the limit, int32(0) keys committed and aborted, outputs the broker would refuse) is accounted for exactly once; valid traffic stays exact (kcat); no partition stalls; the app stays up', async (t) => {
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
  t.true(report.transactions.aborted >= 2, 'aborted transactions of the bad-input producer');
  t.true((report.stall.longestSteady?.ms ?? 0) < 6_000);
  t.true(report.ledger.acceptedIds > 2_000);
  t.deepEqual(report.appErrors, []);
  t.true(report.ok);
});

