/**
 * The runtime creates a task's StreamTask (which initializes its processors) BEFORE it restores the
 * task's stores (packages/runtime/src/kafka/activeTask.ts: new StreamTask, then stores.restore). A
 * processor that reads its store in init() would see the empty store of a fresh instance. These tests
 * replay a crash with that order (in memory, as windowedEos.test.ts does), for the operators that keep
 * their own state next to their data: suppress (untilWindowCloses, untilTimeLimit) and the grace
 * buffer of a versioned stream-table join.
 */
import test from 'ava';
import { BufferConfig, Serdes, StreamsBuilder, Suppressed, TimeWindows, type CollectedRecord, type Topology } from '@vltava/dsl';
import { InMemoryChangelog, openTaskStoresSync, type TaskStores } from '@vltava/state';
import { StreamTask } from './streamTask.js';

const str = Serdes.string();
const int = Serdes.int64();
const wstr = Serdes.windowed(str);

class Instance {
  readonly pending: CollectedRecord[] = [];
  readonly stores: TaskStores;
  readonly task: StreamTask;
  private constructor(private readonly topology: Topology) {
    const collector = { send: (r: CollectedRecord) => void this.pending.push(r) };
    this.stores = openTaskStoresSync({ applicationId: 'app', taskId: '0_0', partition: 0, specs: topology.storeSpecs(0), collector, backend: 'memory', cacheMaxBytes: 0 });
    // the runtime's order: the task (and its processors' init) first ...
    this.task = new StreamTask({ topology, subtopology: 0, partition: 0, applicationId: 'app', stores: this.stores, collector });
  }
  static async start(topology: Topology, log: InMemoryChangelog): Promise<Instance> {
    const inst = new Instance(topology);
    await inst.stores.restore(log); // ... then the restore
    return inst;
  }
  commit(log: InMemoryChangelog): void {
    this.task.prepareCommit();
    const txn = log.beginTransaction();
    for (const r of this.pending.splice(0)) txn.send({ ...r, partition: 0 });
    const last = txn.commit();
    const offsets = new Map<string, number>();
    for (const store of this.topology.subtopologies[0]!.stores) {
      const o = last.get(this.stores.changelogTopic(store));
      if (o !== undefined) offsets.set(store, o);
    }
    this.stores.commitSync(offsets);
    this.task.markCommitted();
  }
  process(topic: string, offset: number, key: string, value: Buffer, timestamp: number): void {
    this.task.process({ topic, partition: 0, offset, key: Buffer.from(key), value, timestamp });
  }
}

test('suppress(untilWindowCloses) restored after its processor initialized: a late update of an emitted window is dropped, not emitted twice', async (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str })
    .groupByKey()
    .windowedBy(TimeWindows.ofSizeAndGrace(10, 2))
    .count({ name: 'counts', caching: false })
    .suppress(Suppressed.untilWindowCloses({ name: 'final' }))
    .toStream()
    .to('out', { keySerde: wstr, valueSerde: int });
  const topo = b.build();
  const log = new InMemoryChangelog();
  const x = Buffer.from('x');
  const first = await Instance.start(topo, log);
  first.process('in', 0, 'a', x, 1);
  first.process('in', 1, 'a', x, 5);
  first.process('in', 2, 'a', x, 15); // closes [0,10): a=2
  first.commit(log);
  const finals = () => log.committedRecords('out', 0).map((r) => `${wstr.deserialize(r.key).window.start}=${int.deserialize(r.value!)}`);
  t.deepEqual(finals(), ['0=2']);

  const second = await Instance.start(topo, log);
  second.process('in', 3, 'a', x, 7); // late for the suppress (its stream time is 15), not for the fresh aggregation
  second.process('in', 4, 'a', x, 30); // closes [10,20)
  second.commit(log);
  t.deepEqual(finals(), ['0=2', '10=1'], 'window [0,10) has exactly one final result');
});

test('suppress(untilTimeLimit) restored after its processor initialized: the buffered keys, their buffer times and the stream time survive', async (t) => {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str })
    .groupByKey()
    .count({ name: 'counts', caching: false })
    .suppress(Suppressed.untilTimeLimit(10, BufferConfig.maxRecords(2).emitEarlyWhenFull(), { name: 'limited' }))
    .toStream()
    .to('out', { keySerde: str, valueSerde: int });
  const topo = b.build();
  const log = new InMemoryChangelog();
  const x = Buffer.from('x');
  const first = await Instance.start(topo, log);
  first.process('in', 0, 'a', x, 0);
  first.process('in', 1, 'b', x, 4);
  first.commit(log);
  const out = () => log.committedRecords('out', 0).map((r) => `${r.key.toString()}=${int.deserialize(r.value!)}@${r.timestamp}`);
  t.deepEqual(out(), []);
  const second = await Instance.start(topo, log);
  second.process('in', 2, 'a', x, 5); // a stays under buffer time 0; the buffer holds 2 keys
  second.process('in', 3, 'c', x, 6); // 3 keys > 2: the oldest (a, buffered at 0) is emitted early
  second.process('in', 4, 'z', x, 14); // stream time 14: b (buffered at 4) is due; c (6) and z wait
  second.commit(log);
  t.deepEqual(out(), ['a=2@5', 'b=1@4']);
});

test('a versioned stream-table join with grace restored after its processor initialized: buffered records join once, in order', async (t) => {
  const b = new StreamsBuilder();
  const prices = b.table('prices', { name: 'prices', keySerde: str, valueSerde: int, versioned: { historyRetentionMs: 10_000 } });
  b.stream('orders', { keySerde: str, valueSerde: int })
    .join(prices, (q, p) => q * p, { name: 'priced', gracePeriodMs: 10 })
    .to('out', { keySerde: str, valueSerde: int });
  const topo = b.build();
  const log = new InMemoryChangelog();
  const first = await Instance.start(topo, log);
  first.process('prices', 0, 'k', int.serialize(2), 0);
  first.process('orders', 0, 'k', int.serialize(1), 5); // buffered until stream time 15
  first.process('orders', 1, 'k', int.serialize(3), 8);
  first.commit(log);
  const out = () => log.committedRecords('out', 0).map((r) => `${int.deserialize(r.value!)}@${r.timestamp}`);
  t.deepEqual(out(), []);
  const second = await Instance.start(topo, log);
  second.process('prices', 1, 'k', int.serialize(10), 6); // a late price, valid from 6
  second.process('orders', 2, 'k', int.serialize(1), 18); // stream time 18: both buffered orders are due
  second.commit(log);
  t.deepEqual(out(), ['2@5', '30@8'], 'the order at 5 sees price 2, the one at 8 the late price 10');
});
