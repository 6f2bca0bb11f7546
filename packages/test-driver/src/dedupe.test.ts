import test from 'ava';
import { Serdes, StreamsBuilder } from '@vltava/dsl';
import { TopologyTestDriver } from './topologyTestDriver.js';

const str = Serdes.string();
interface Payment {
  id: string;
  amount: number;
}
const json = Serdes.json<Payment>();

function setup(retentionMs: number, partitions = 1) {
  const b = new StreamsBuilder();
  b.stream('payments', { keySerde: str, valueSerde: json })
    .dedupe((_k, p) => p.id, { name: 'payments-dedupe', retentionMs })
    .to('unique', { keySerde: str, valueSerde: json });
  const d = new TopologyTestDriver(b.build(), { defaultPartitions: partitions });
  return {
    d,
    input: d.createInputTopic('payments', { keySerde: str, valueSerde: json }),
    output: d.createOutputTopic('unique', { keySerde: str, valueSerde: json }),
  };
}

test('dedupe drops a resent record whose id was seen within the retention', (t) => {
  const { d, input, output } = setup(60_000);
  input.pipeInput('acct-1', { id: 'p1', amount: 10 }, 1_000);
  input.pipeInput('acct-1', { id: 'p1', amount: 10 }, 1_000); // producer resend
  input.pipeInput('acct-1', { id: 'p2', amount: 5 }, 2_000);
  input.pipeInput('acct-1', { id: 'p1', amount: 10 }, 30_000); // still within 60 s
  t.deepEqual(output.readValuesToList().map((p) => p?.id), ['p1', 'p2']);
  t.is(d.metrics().droppedByReason.get('duplicate'), 2);
});

test('after the retention has passed (in stream time), the id is forgotten and purged from the store', (t) => {
  const { d, input, output } = setup(10_000);
  input.pipeInput('k', { id: 'p1', amount: 1 }, 1_000);
  input.pipeInput('k', { id: 'other', amount: 1 }, 20_000); // stream time moves past 1_000 + 10_000
  input.pipeInput('k', { id: 'p1', amount: 1 }, 20_001);
  t.deepEqual(output.readValuesToList().map((p) => p?.id), ['p1', 'other', 'p1']);
  const store = d.getKeyValueStore<string, number>('payments-dedupe');
  // The purge punctuator (every retention/2 of stream time) removed expired ids; p1 was re-added at 20_001.
  input.pipeInput('k', { id: 'late', amount: 1 }, 40_000);
  t.is(store.get('p1'), undefined);
  t.is(store.get('other'), undefined);
  t.is(store.get('late'), 40_000);
});

test('dedupe state is per key partition and survives in the change-logged store', (t) => {
  const { d, input, output } = setup(60_000, 3);
  for (let i = 0; i < 20; i++) input.pipeInput(`acct-${i % 5}`, { id: `p${i % 10}`, amount: i }, i);
  // ids p0..p9 each arrive twice, with the same key (i and i+10 share i % 5), so the second is dropped
  t.is(output.getQueueSize(), 10);
  const changelog = d.createOutputTopic('test-app-payments-dedupe-changelog', { keySerde: str, valueSerde: Serdes.int64() });
  t.is(new Set(changelog.readKeyValuesToList().map((kv) => kv.key)).size, 10);
});
