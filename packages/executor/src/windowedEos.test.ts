/**
 * Final results of `suppress(untilWindowCloses)` survive a crash exactly once. The commit protocol
 * of docs/architecture.md is replayed in memory: each commit sends the task's outputs and changelog
 * records in one transaction of an InMemoryChangelog (read_committed, like Kafka); a crash aborts the
 * open transaction and loses the in-memory stores; the new task restores every store (window store
 * and suppress buffer) from the committed changelog and re-processes the input from the committed offset.
 */
import test from 'ava';
import { JoinWindows, Serdes, StreamsBuilder, TimeWindows, type CollectedRecord, type Topology } from '@vltava/dsl';
import { InMemoryChangelog, openTaskStoresSync, type TaskStores } from '@vltava/state';
import { StreamTask } from './streamTask.js';

const str = Serdes.string();
const int = Serdes.int64();
const wstr = Serdes.windowed(str);

function topology(): Topology {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str })
    .groupByKey()
    .windowedBy(TimeWindows.ofSizeAndGrace(10, 2))
    .count({ name: 'counts', emitStrategy: 'on-window-close' })
    .toStream()
    .to('out', { keySerde: wstr, valueSerde: int });
  return b.build();
}

class Instance {
  readonly pending: CollectedRecord[] = [];
  readonly stores: TaskStores;
  task!: StreamTask;
  private constructor(private readonly topology: Topology) {
    const collector = { send: (r: CollectedRecord) => void this.pending.push(r) };
    this.stores = openTaskStoresSync({
      applicationId: 'app',
      taskId: '0_0',
      partition: 0,
      specs: topology.storeSpecs(0),
      collector,
      backend: 'memory',
      cacheMaxBytes: 0,
      recordTimestamp: () => this.task?.currentRecordTimestamp() ?? 0,
    });
  }
  /** Opens the stores, restores them from the committed changelog, then creates the task (the runtime's order). */
  static async start(topology: Topology, log: InMemoryChangelog): Promise<Instance> {
    const inst = new Instance(topology);
    await inst.stores.restore(log);
    const collector = { send: (r: CollectedRecord) => void inst.pending.push(r) };
    inst.task = new StreamTask({ topology, subtopology: 0, partition: 0, applicationId: 'app', stores: inst.stores, collector });
    return inst;
  }
  /** Steps 1-5 of the commit protocol; returns the committed input offset. */
  commit(log: InMemoryChangelog): number {
    const offsets = this.task.prepareCommit();
    const txn = log.beginTransaction();
    for (const r of this.pending.splice(0)) txn.send({ ...r, partition: 0 });
    const last = txn.commit();
    const changelogOffsets = new Map<string, number>();
    for (const store of this.topology.subtopologies[0]!.stores) {
      const o = last.get(this.stores.changelogTopic(store));
      if (o !== undefined) changelogOffsets.set(store, o);
    }
    this.stores.commitSync(changelogOffsets);
    this.task.markCommitted();
    return offsets.get('in') ?? 0;
  }
}

const input: [string, number][] = [
  ['a', 1],
  ['a', 5],
  ['b', 7],
  ['a', 12], // stream time 12 = 10 + 2: window [0,10) closes: a=2, b=1
  ['a', 15],
  ['b', 22], // closes [10,20): a=2
  ['c', 40], // closes [20,30): b=1
];

function feed(inst: Instance, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const [k, ts] = input[i]!;
    inst.task.process({ topic: 'in', partition: 0, offset: i, key: Buffer.from(k), value: Buffer.from('x'), timestamp: ts });
  }
}

function finals(log: InMemoryChangelog): string[] {
  return log.committedRecords('out', 0).map((r) => {
    const w = wstr.deserialize(r.key);
    return `${w.key}[${w.window.start},${w.window.end})=${int.deserialize(r.value!)}`;
  });
}

test('suppress(untilWindowCloses): after a crash between commits, each final result is committed exactly once', async (t) => {
  const topo = topology();
  const log = new InMemoryChangelog();

  const first = await Instance.start(topo, log);
  feed(first, 0, 3);
  let committed = first.commit(log);
  t.is(committed, 3);
  t.deepEqual(finals(log), []);
  feed(first, 3, 5); // emits the final results of [0,10) into the open transaction ...
  t.true(first.pending.some((r) => r.topic === 'out'));
  // ... and crashes before committing: the transaction is aborted, the in-memory state is gone.
  log.abortOpenTransactions();
  t.deepEqual(finals(log), [], 'nothing of the aborted transaction is visible');

  const second = await Instance.start(topo, log);
  feed(second, committed, 6);
  committed = second.commit(log);
  t.deepEqual(finals(log), ['a[0,10)=2', 'b[0,10)=1', 'a[10,20)=2']);

  // A second crash right after a commit: nothing is re-emitted on restart.
  const third = await Instance.start(topo, log);
  // A late record for the emitted window [0,10) right after the restart: the restarted aggregation
  // has no stream time yet and accepts it, but suppress restored its stream time and drops it.
  third.task.process({ topic: 'in', partition: 0, offset: 99, key: Buffer.from('a'), value: Buffer.from('x'), timestamp: 3 });
  t.is(third.task.metrics().droppedByReason.get('late record (window closed)'), 1);
  feed(third, committed, input.length);
  third.commit(log);
  t.deepEqual(finals(log), ['a[0,10)=2', 'b[0,10)=1', 'a[10,20)=2', 'b[20,30)=1']);
});

test('stream-stream leftJoin: an unmatched result is committed exactly once across a crash (the outer buffer is change-logged)', async (t) => {
  const b = new StreamsBuilder();
  const l = b.stream('l', { keySerde: str, valueSerde: str });
  const r = b.stream('r', { keySerde: str, valueSerde: str });
  l.leftJoin(r, (a, c) => `${a}+${c}`, { name: 'lj', windows: JoinWindows.ofTimeDifferenceWithNoGrace(5) }).to('out', { keySerde: str, valueSerde: str });
  const topo = b.build();
  const log = new InMemoryChangelog();
  const rec = (topic: string, offset: number, key: string, value: string, ts: number) => ({ topic, partition: 0, offset, key: Buffer.from(key), value: Buffer.from(value), timestamp: ts });
  const out = () => log.committedRecords('out', 0).map((x) => `${x.key.toString()}:${x.value!.toString()}`);

  const first = await Instance.start(topo, log);
  first.task.process(rec('l', 0, 'a', 'A', 0)); // unmatched, buffered
  first.task.process(rec('l', 1, 'b', 'B', 1));
  first.commit(log);
  first.task.process(rec('r', 0, 'b', 'RB', 3)); // matches B
  first.task.process(rec('l', 2, 'z', 'Z', 6)); // closes A's window: A+null emitted, then crash
  t.deepEqual(first.pending.filter((x) => x.topic === 'out').map((x) => x.value!.toString()), ['B+RB', 'A+null']);
  log.abortOpenTransactions();

  const second = await Instance.start(topo, log);
  second.task.process(rec('r', 0, 'b', 'RB', 3));
  second.task.process(rec('l', 2, 'z', 'Z', 6));
  second.commit(log);
  second.task.process(rec('l', 3, 'q', 'Q', 100)); // closes B (matched: nothing) and Z
  second.commit(log);
  t.deepEqual(out(), ['b:B+RB', 'a:A+null', 'z:Z+null']);
});
