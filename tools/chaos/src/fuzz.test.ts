/** The bad-input run against the real broker: bad records mixed into valid traffic. */
import test from 'ava';
import { useKafka } from '@vltava/kafka-local/testing';
import { runFuzz } from './fuzz.js';

const kafka = useKafka(test);

test('[broker] bad input (random bytes, wrong schema, missing fields, negative amounts, huge payloads, null keys) is rejected exactly once; valid traffic stays exact; the app stays up', async (t) => {
  t.timeout(180_000);
  const k = kafka();
  const partitions = 3;
  const [commands, balances, journal, rejections, dlq] = await k.createTopics(
    ['fz-commands', 'fz-balances', 'fz-journal', 'fz-rejections', 'fz-dlq'].map((prefix) => ({ prefix, partitions })),
  );
  const report = await runFuzz({
    kafka: k.client(),
    brokers: k.brokers,
    topics: { commands: commands!, balances: balances!, journal: journal!, rejections: rejections! },
    deadLetterTopic: dlq!,
    applicationId: k.uniqueName('fz-app'),
    partitions,
    valid: 3_000,
    bad: 300,
  });
  t.log(`bad records by kind: ${JSON.stringify(report.badByKind)}; ${report.rejectionsMatched}/${report.badSent} rejected exactly once; DLQ ${report.deadLettered}`);
  t.log(`valid: ${report.ledger.acceptedIds} accepted, ${report.ledger.rejectedIds} rejected, ${report.ledger.journalEntries} journal entries`);
  t.deepEqual(report.violations, []);
  t.is(report.rejectionsMatched, report.badSent);
  t.is(Object.keys(report.badByKind).length, 9, 'every kind of bad input was sent');
  t.true(report.ledger.acceptedIds > 2_000);
  t.deepEqual(report.appErrors, []);
  t.true(report.ok);
});
