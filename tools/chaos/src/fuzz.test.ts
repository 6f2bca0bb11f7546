/**
 * The bad-input run against the real broker, bounded for CI: every kind of bad record (the nine
 * malformed kinds and the poison kinds of issue 12) among valid traffic. The full run (10,000 of
 * each) is `pnpm chaos --fuzz` (docs/chaos-report.md).
 */
import test from 'ava';
import { useKafka } from '@vltava/kafka-local/testing';
import { ALL_KINDS, DEFAULT_LIMITS, fuzzTopicConfigs, runFuzz } from './fuzz.js';

const kafka = useKafka(test);

test('[broker] bad input of every kind (malformed, null header values, huge keys, headers near the limit, int32(0) keys committed and aborted, outputs the broker would refuse) is accounted for exactly once; valid traffic stays exact (kcat); no partition stalls; the app stays up', async (t) => {
  t.timeout(240_000);
  const k = kafka();
  const partitions = 3;
  const cfg = fuzzTopicConfigs(DEFAULT_LIMITS);
  const [commands, balances, journal, rejections, dlq] = await k.createTopics([
    { prefix: 'fz-commands', partitions, config: cfg.commands },
    { prefix: 'fz-balances', partitions },
    { prefix: 'fz-journal', partitions },
    { prefix: 'fz-rejections', partitions, config: cfg.rejections },
    { prefix: 'fz-dlq', partitions },
  ]);
  const report = await runFuzz({
    kafka: k.client(),
    brokers: k.brokers,
    topics: { commands: commands!, balances: balances!, journal: journal!, rejections: rejections! },
    deadLetterTopic: dlq!,
    applicationId: k.uniqueName('fz-app'),
    partitions,
    valid: 3_000,
    perKind: 30,
    sessionTimeoutMs: 6_000,
  });
  t.log(`bad records by kind: ${JSON.stringify(report.badByKind)}`);
  t.log(`${report.accounted}/${report.badSent} accounted for exactly once; dead-letter ${report.deadLettered}; longest stall ${report.stall.longest?.ms ?? 0} ms; ${report.transactions.committed} committed / ${report.transactions.aborted} aborted transactions`);
  t.log(`valid: ${report.ledger.acceptedIds} accepted, ${report.ledger.rejectedIds} rejected, ${report.ledger.journalEntries} journal entries (read by ${report.reader})`);
  t.deepEqual(report.violations, []);
  t.is(report.accounted, report.badSent);
  t.deepEqual(Object.keys(report.badByKind).sort(), [...ALL_KINDS].sort(), 'every kind of bad input was sent');
  for (const kind of ALL_KINDS) t.true((report.badByKind[kind] ?? 0) >= 30, kind);
  t.is(report.reader, 'kcat');
  t.is(report.deadLettered, (report.byKind['output-too-large']?.viaDlq ?? 0) + (report.byKind['output-timestamp']?.viaDlq ?? 0));
  t.true(report.deadLettered >= 60, 'the production handler dead-lettered the outputs the broker would refuse');
  t.true(report.transactions.aborted >= 3);
  t.true((report.stall.longest?.ms ?? 0) < 6_000);
  t.true(report.ledger.acceptedIds > 2_000);
  t.deepEqual(report.appErrors, []);
  t.true(report.ok);
});
