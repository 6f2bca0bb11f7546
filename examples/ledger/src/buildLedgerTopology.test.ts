import test from 'ava';
import { Serdes } from '@vltava/dsl';
import { TopologyTestDriver } from '@vltava/test-driver';
import { buildLedgerTopology } from './buildLedgerTopology.js';
import { MAX_COMMAND_BYTES, commandKey, type Command, type JournalEntry, type Rejection } from './commands.js';
import { referenceModel, verifyLedger, type LedgerOutputs, type Out } from './verifyLedger.js';
import { Workload } from './workload.js';

const str = Serdes.string();

function ledger(partitions = 1) {
  const driver = new TopologyTestDriver(buildLedgerTopology({ partitions }), { applicationId: 'ledger', defaultPartitions: partitions });
  const commands = driver.createInputTopic<string | null, Buffer | null>('ledger-commands', { keySerde: str as never, valueSerde: Serdes.bytes() as never });
  const journal = driver.createOutputTopic('ledger-journal', { keySerde: str, valueSerde: Serdes.json<JournalEntry>() });
  const balances = driver.createOutputTopic('ledger-balances', { keySerde: str, valueSerde: Serdes.json<number>() });
  const rejections = driver.createOutputTopic('ledger-rejections', { keySerde: str, valueSerde: Serdes.json<Rejection>() });
  const send = (cmd: Command, key: string | null = commandKey(cmd)): void => commands.pipeInput(key, Buffer.from(JSON.stringify(cmd)));
  const outputs = (): LedgerOutputs => {
    const read = <V>(records: { key: string | null; value: V | null; partition?: number; offset?: number }[]): Out<V>[] =>
      records.map((r) => ({ key: r.key, value: r.value as V, partition: r.partition!, offset: r.offset! }));
    return { journal: read(journal.readRecordsToList()), balances: read(balances.readRecordsToList()), rejections: read(rejections.readRecordsToList()) };
  };
  return { driver, commands, journal, balances, rejections, send, outputs };
}

test('a deposit, then a transfer: debit on the source, credit on the destination through the repartition topic', (t) => {
  const l = ledger(3);
  l.send({ type: 'deposit', id: 'd1', account: 'acc-1', amount: 100 });
  l.send({ type: 'transfer', id: 't1', from: 'acc-1', to: 'acc-2', amount: 30 });
  t.deepEqual(
    l.journal.readValuesToList(),
    [
      { commandId: 'd1', account: 'acc-1', side: 'deposit', amount: 100, balance: 100 },
      { commandId: 't1', account: 'acc-1', side: 'debit', amount: 30, balance: 70, counterparty: 'acc-2' },
      { commandId: 't1', account: 'acc-2', side: 'credit', amount: 30, balance: 30, counterparty: 'acc-1' },
    ],
  );
  t.deepEqual(l.balances.readKeyValuesToMap(), new Map([['acc-1', 70], ['acc-2', 30]]));
  t.true(l.rejections.isEmpty());
  t.true(l.driver.producedTopicNames().includes('ledger-credits-repartition'));
  t.is(l.driver.getKeyValueStore<string, number>('balances').get('acc-2'), 30);
  l.driver.close();
});

test('a resent command id takes effect once, even when it was rejected', (t) => {
  const l = ledger(2);
  const dep: Command = { type: 'deposit', id: 'd1', account: 'acc-1', amount: 50 };
  const tooMuch: Command = { type: 'transfer', id: 't-big', from: 'acc-1', to: 'acc-2', amount: 51 };
  for (let i = 0; i < 3; i++) {
    l.send(dep);
    l.send(tooMuch);
  }
  l.send({ type: 'deposit', id: 'd2', account: 'acc-1', amount: 1 });
  l.send(tooMuch); // enough funds now, but the id was already used
  t.deepEqual((l.journal.readValuesToList() as JournalEntry[]).map((e) => e.commandId), ['d1', 'd2']);
  t.deepEqual((l.rejections.readValuesToList() as Rejection[]).map((r) => [r.commandId, r.code]), [['t-big', 'insufficient-funds']]);
  t.is(l.driver.getKeyValueStore<string, number>('balances').get('acc-1'), 51);
  t.is(l.driver.metrics().droppedByReason.get('duplicate'), 5, 'two resends of each, and the late one');
  l.driver.close();
});

test('every kind of bad command is rejected once, with its reason; the ledger keeps going', (t) => {
  const l = ledger(2);
  l.send({ type: 'deposit', id: 'ok', account: 'acc-1', amount: 10 });
  const raw = (key: string | null, value: Buffer | null, ref: string): void => l.commands.pipeRecord({ key, value, timestamp: 0, headers: { 'client-ref': ref } });
  raw('acc-1', Buffer.from([0xff, 0x00, 0x13]), 'bytes');
  raw('acc-1', Buffer.from('[1,2]'), 'array');
  raw('acc-1', Buffer.from('{"type":"deposit","account":"acc-1","amount":5}'), 'no-id');
  raw('acc-1', Buffer.from('{"type":"refund","id":"x1","amount":5}'), 'bad-type');
  raw('acc-1', Buffer.from('{"type":"deposit","id":"x2","account":"acc-1","amount":"5"}'), 'amount-string');
  raw('acc-1', Buffer.alloc(MAX_COMMAND_BYTES + 1, 0x20), 'huge');
  raw('acc-1', null, 'null-value');
  raw(null, Buffer.from('{"type":"deposit","id":"x3","account":"acc-1","amount":5}'), 'null-key');
  raw('acc-2', Buffer.from('{"type":"deposit","id":"x4","account":"acc-1","amount":5}'), 'wrong-key');
  l.send({ type: 'deposit', id: 'x5', account: 'acc-1', amount: -5 });
  l.send({ type: 'deposit', id: 'x6', account: 'acc-1', amount: 2.5 });
  l.send({ type: 'transfer', id: 'x7', from: 'acc-1', to: 'mallory', amount: 1 });
  l.send({ type: 'transfer', id: 'x8', from: 'acc-1', to: 'acc-1', amount: 1 });
  l.send({ type: 'transfer', id: 'x9', from: 'acc-1', to: 'acc-2', amount: 11 });
  l.send({ type: 'transfer', id: 'ok2', from: 'acc-1', to: 'acc-2', amount: 10 });
  const rejections = l.rejections.readValuesToList() as Rejection[];
  t.deepEqual(
    rejections.map((r) => [r.ref ?? r.commandId, r.code]),
    [
      ['bytes', 'malformed'],
      ['array', 'malformed'],
      ['no-id', 'malformed'],
      ['bad-type', 'malformed'],
      ['amount-string', 'malformed'],
      ['huge', 'too-large'],
      ['null-value', 'malformed'],
      ['null-key', 'missing-key'],
      ['wrong-key', 'key-mismatch'],
      ['x5', 'invalid-amount'],
      ['x6', 'invalid-amount'],
      ['x7', 'unknown-account'],
      ['x8', 'same-account'],
      ['x9', 'insufficient-funds'],
    ],
  );
  t.true(rejections.every((r) => r.reason.length > 0 && r.input.topic === 'ledger-commands' && r.input.offset >= 0));
  t.is(rejections[3]!.commandId, 'x1', 'a rejection names the command id when it has one');
  t.deepEqual(l.balances.readKeyValuesToMap(), new Map([['acc-1', 0], ['acc-2', 10]]));
  t.is(l.driver.metrics().processingErrors, 0);
  l.driver.close();
});

test('a seeded workload with resends over 4 partitions matches the sequential model (and the check can fail)', (t) => {
  const l = ledger(4);
  const w = new Workload({ seed: 3, accounts: 12 });
  const records = w.batch(3_000);
  l.commands.pipeKeyValueList(records.map((r) => ({ key: r.key, value: r.value })));
  const ref = referenceModel(records.map((r) => r.command));
  t.true(ref.resends > 100 && ref.rejected.size > 100 && ref.accepted.size > 2_000, `resends ${ref.resends}, rejected ${ref.rejected.size}, accepted ${ref.accepted.size}`);
  const out = l.outputs();
  const report = verifyLedger(ref, out);
  t.deepEqual(report.violations, []);
  t.true(report.ok);

  // The same outputs with one journal entry doubled, or one rejection dropped, fail the check.
  const doubled = verifyLedger(ref, { ...out, journal: [...out.journal, out.journal[100]!] });
  t.false(doubled.ok);
  t.deepEqual(doubled.duplicated, [out.journal[100]!.value.commandId]);
  const missing = verifyLedger(ref, { ...out, rejections: out.rejections.slice(1) });
  t.deepEqual(missing.lost, [out.rejections[0]!.value.commandId!]);
  const wrongBalance = verifyLedger(ref, { ...out, balances: out.balances.map((b, i) => (i === out.balances.length - 1 ? { ...b, value: b.value + 1 } : b)) });
  t.false(wrongBalance.ok);
  l.driver.close();
});
