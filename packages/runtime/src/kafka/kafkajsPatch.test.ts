/**
 * kafkajs 2.2.4 lets records of aborted transactions through to read_committed consumers when a
 * fetch holds several aborted transactions that start before the same record: its filter activated
 * one aborted transaction per record. We ship a patch (patches/kafkajs@2.2.4.patch, applied by pnpm);
 * this test fails if the installed kafkajs is unpatched. Found by the failover tests (over-counts
 * after a crash with two open transactions) and the ledger chaos run (a credit without its debit).
 */
import { createRequire } from 'node:module';
import test from 'ava';

const require = createRequire(import.meta.url);
type Msg = { offset: string; key: Buffer; batchContext: { producerId: string; inTransaction: boolean } };
const filterAbortedMessages = require('kafkajs/src/consumer/filterAbortedMessages.js') as (args: {
  messages: Msg[];
  abortedTransactions: { producerId: string; firstOffset: string }[];
}) => Msg[];

const msg = (offset: number, producerId: string, key = 'k'): Msg => ({ offset: String(offset), key: Buffer.from(key), batchContext: { producerId, inTransaction: true } });
const ABORT = Buffer.from([0, 0, 0, 0]);

test('read_committed filtering drops every aborted transaction, also when several start before the first record', (t) => {
  const kept = filterAbortedMessages({
    messages: [msg(110, 'B'), msg(111, 'A'), msg(112, 'C'), { ...msg(113, 'A'), key: ABORT }, msg(114, 'A'), msg(115, 'B')],
    abortedTransactions: [
      { producerId: 'B', firstOffset: '105' },
      { producerId: 'A', firstOffset: '100' },
    ],
  });
  // 110/B and 111/A and 115/B belong to aborted transactions; 113 is A's abort marker (kept, it is a control record);
  // 114/A is A's next, committed transaction.
  t.deepEqual(
    kept.map((m) => `${m.offset}/${m.batchContext.producerId}`),
    ['112/C', '113/A', '114/A'],
  );
});
