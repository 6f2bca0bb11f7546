import test from 'ava';
import { runSinkChaos } from './chaos/sinkChaos.js';

test('[broker] sink chaos (bounded): the ledger into SQLite and PostgreSQL under 10 faults aimed at the sinks; tables equal the reference model', async (t) => {
  t.timeout(400_000);
  const lines: string[] = [];
  const r = await runSinkChaos({ faults: 10, seed: 4242, log: (l) => lines.push(l) });
  t.log(lines.slice(-3).join('\n'));
  t.deepEqual(r.violations, [], lines.join('\n'));
  t.true(r.ok);
  t.true(Object.values(r.faults).reduce((a, b) => a + b, 0) >= 10, JSON.stringify(r.faults));
  t.true(r.journalRows > 0 && r.balances > 0);
});
