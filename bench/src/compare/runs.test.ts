import test from 'ava';
import { RUNS, SelectionError, selectRuns } from './runs.js';

const ids = (only: string, fix = false): string[] => selectRuns(only, { kafkajsFix: fix }).map((r) => r.id);

test('an exact id selects exactly that run', (t) => {
  t.deepEqual(ids('kstreams-eos'), ['kstreams-eos']);
  t.deepEqual(ids('vltava-eos-100'), ['vltava-eos-100']);
  t.deepEqual(ids('vltava-eos-100,kstreams-eos'), ['kstreams-eos', 'vltava-eos-100']); // run order: the pair back to back
});

test('every selected Kafka Streams run is marked as needing the jars (kstreams-eos alone too)', (t) => {
  for (const only of ['kstreams-eos', 'kstreams-eos-2t', 'recovery-kstreams', 'kstreams-*'])
    t.true(selectRuns(only).some((r) => r.group === 'kstreams'), only);
  t.false(selectRuns('vltava-eos-100').some((r) => r.group === 'kstreams'));
});

test('a prefix selects only when written as prefix*', (t) => {
  t.deepEqual(ids('kstreams-*'), ['kstreams-eos', 'kstreams-eos-2t', 'kstreams-alos']);
  t.deepEqual(ids('ceiling*'), ['ceiling-produce', 'ceiling-produce-txn', 'ceiling-consume']);
  t.deepEqual(ids('latency-floor'), ['latency-floor']);
  const e = t.throws(() => ids('kstreams'), { instanceOf: SelectionError });
  t.regex(e!.message, /"kstreams\*"/);
  t.regex(e!.message, /Valid ids: ceiling-produce, /);
});

test('an unknown id fails listing the valid ids', (t) => {
  const e = t.throws(() => ids('vltava-eos-100,nope'), { instanceOf: SelectionError });
  t.regex(e!.message, /unknown run id "nope"/);
  for (const r of RUNS) t.true(e!.message.includes(r.id));
  t.throws(() => ids('zz*'), { instanceOf: SelectionError });
});

test('the default set, all, and --kafkajs-fix', (t) => {
  const def = ids('');
  t.deepEqual(def, ids('default'));
  t.true(def.includes('kstreams-eos-2t') && def.includes('vltava-eos-100-2t'));
  t.false(def.includes('flow-eos'));
  t.deepEqual(ids('all'), RUNS.map((r) => r.id));
  t.true(ids('', true).includes('vltava-fix-eos-100'));
});
