import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, Serdes, StreamsBuilder, timestampedSerde, type CollectedRecord } from '@vltava/dsl';
import { openTaskStoresSync } from '@vltava/state';
import { StreamTask, parseTaskId, taskIdOf } from './streamTask.js';

const str = Serdes.string();
const int = Serdes.int64();

function makeTask(wallClock = () => 0) {
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str })
    .process<string, string>(() => {
      let n = 0;
      return {
        init: (ctx) => void ctx.schedule(1000, 'wall-clock', (ts) => ctx.forward({ key: 'tick', value: String(n++), timestamp: ts })),
        process: () => {},
      };
    })
    .to('ticks', { keySerde: str, valueSerde: str });
  b.stream('words', { keySerde: str, valueSerde: str }).groupByKey().count({ name: 'counts' }).toStream().to('counts-out', { keySerde: str, valueSerde: int });
  const topology = b.build();
  const sent: CollectedRecord[] = [];
  const collector = { send: (r: CollectedRecord) => void sent.push(r) };
  const build = (sub: number) => {
    const specs = topology.subtopologies[sub]!.stores.map((s) => topology.stores.get(s)!);
    const stores = openTaskStoresSync({ applicationId: 'app', taskId: taskIdOf(sub, 2), partition: 2, specs, collector, backend: 'memory', cacheMaxBytes: 0 });
    return { task: new StreamTask({ topology, subtopology: sub, partition: 2, applicationId: 'app', stores, collector, wallClock }), stores };
  };
  return { topology, sent, build };
}

test('task ids', (t) => {
  t.is(taskIdOf(3, 7), '3_7');
  t.deepEqual(parseTaskId('3_7'), { subtopology: 3, partition: 7 });
  t.throws(() => parseTaskId('x'), { instanceOf: ConfigError });
});

test('a task processes raw records, sends outputs and changelog records to the collector, and tracks offsets', (t) => {
  const { sent, build } = makeTask();
  const { task } = build(1);
  t.is(task.id, '1_2');
  t.deepEqual(task.inputTopics(), ['words']);
  t.false(task.commitNeeded);
  task.process({ topic: 'words', partition: 2, offset: 41, key: Buffer.from('w'), value: Buffer.from('x'), timestamp: 5 });
  task.process({ topic: 'words', partition: 2, offset: 42, key: Buffer.from('w'), value: Buffer.from('x'), timestamp: 3 });
  t.is(task.streamTime, 5);
  t.true(task.commitNeeded);
  const outputs = sent.filter((r) => r.topic === 'counts-out');
  t.deepEqual(outputs.map((r) => [r.key?.toString(), int.deserialize(r.value!), r.timestamp]), [['w', 1, 5], ['w', 2, 5]], 'an aggregation result carries the max timestamp of its records (Kafka Streams)');
  const changelog = sent.filter((r) => r.topic === 'app-counts-changelog');
  t.true(changelog.length >= 1);
  t.true(changelog.every((r) => r.partition === 2), 'changelog records go to the task partition');
  t.deepEqual(task.prepareCommit(), new Map([['words', 43]]));
  task.markCommitted();
  t.false(task.commitNeeded);
  t.throws(() => task.process({ topic: 'other', partition: 2, offset: 0, key: null, value: null, timestamp: 0 }), { instanceOf: ConfigError, message: /does not read topic "other"/ });
});

test('wall-clock punctuation is driven by punctuateWallClock and reported by nextWallClockPunctuation', (t) => {
  let now = 10_000;
  const { sent, build } = makeTask(() => now);
  const { task } = build(0);
  t.is(task.nextWallClockPunctuation(), 11_000);
  t.is(task.punctuateWallClock(), 0);
  now = 11_000;
  t.is(task.punctuateWallClock(), 1);
  t.is(task.nextWallClockPunctuation(), 12_000);
  t.deepEqual(sent.map((r) => [r.topic, r.value?.toString(), r.timestamp]), [['ticks', '0', 11_000]]);
  task.close();
  t.is(task.nextWallClockPunctuation(), Infinity);
  t.throws(() => task.process({ topic: 'in', partition: 2, offset: 0, key: null, value: null, timestamp: 0 }), { message: /closed/ });
});

test('buffered records are processed across input topics in timestamp order', (t) => {
  const b = new StreamsBuilder();
  const seen: string[] = [];
  b.stream('a', { keySerde: str, valueSerde: str }).merge(b.stream('b', { keySerde: str, valueSerde: str })).foreach((_k, v) => seen.push(v));
  const topology = b.build();
  const collector = { send: () => {} };
  const stores = openTaskStoresSync({ applicationId: 'app', taskId: '0_0', partition: 0, specs: [], collector, backend: 'memory' });
  const task = new StreamTask({ topology, subtopology: 0, partition: 0, applicationId: 'app', stores, collector });
  const rec = (topic: string, offset: number, ts: number) => ({ topic, partition: 0, offset, key: null, value: Buffer.from(`${topic}${ts}`), timestamp: ts });
  task.addRecords([rec('a', 0, 1), rec('a', 1, 5), rec('a', 2, 9)]);
  task.addRecords([rec('b', 0, 3), rec('b', 1, 4), rec('b', 2, 10)]);
  t.is(task.bufferedRecords(), 6);
  while (task.processNext());
  t.deepEqual(seen, ['a1', 'b3', 'b4', 'a5', 'a9', 'b10']);
  t.false(task.processNext());
  t.deepEqual(task.committableOffsets(), new Map([['a', 3], ['b', 3]]));
  task.addRecords([rec('a', 3, 11)]);
  task.clearBuffers();
  t.is(task.bufferedRecords(), 0);
});

test('the task layer never imports kafkajs (nor the Kafka adapter)', (t) => {
  const dir = fileURLToPath(new URL('.', import.meta.url));
  const files = readdirSync(dir).filter((f) => f.endsWith('.js'));
  t.true(files.length > 0);
  for (const f of files) {
    const src = readFileSync(join(dir, f), 'utf8');
    t.notRegex(src, /from ['"]kafkajs['"]|import\(['"]kafkajs['"]\)|require\(['"]kafkajs['"]\)/, f);
    t.notRegex(src, /from ['"]\.\.\/(index|kafka\/)/, f);
  }
});

test('with a record cache, prepareCommit() emits the collapsed aggregate updates downstream', (t) => {
  const b = new StreamsBuilder();
  b.stream('words', { keySerde: str, valueSerde: str }).groupByKey().count({ name: 'counts' }).toStream().to('out', { keySerde: str, valueSerde: int });
  const topology = b.build();
  const sent: CollectedRecord[] = [];
  const collector = { send: (r: CollectedRecord) => void sent.push(r) };
  let task: StreamTask | undefined;
  const specs = topology.subtopologies[0]!.stores.map((s) => topology.stores.get(s)!);
  const stores = openTaskStoresSync({
    applicationId: 'app', taskId: '0_0', partition: 0, specs, collector, backend: 'memory', cacheMaxBytes: 1 << 20,
    recordTimestamp: () => task?.currentRecordTimestamp() ?? 0,
  });
  task = new StreamTask({ topology, subtopology: 0, partition: 0, applicationId: 'app', stores, collector });
  for (let i = 0; i < 3; i++) task.process({ topic: 'words', partition: 0, offset: i, key: Buffer.from('w'), value: Buffer.from('x'), timestamp: 100 + i });
  t.deepEqual(sent, [], 'nothing leaves the task before the commit');
  task.prepareCommit();
  const decode = (r: CollectedRecord): number | null => (r.topic === 'app-counts-changelog' ? timestampedSerde(int).deserialize(r.value!)?.value ?? null : int.deserialize(r.value!));
  t.deepEqual(sent.map((r) => [r.topic, r.key?.toString(), decode(r), r.timestamp]).sort(), [
    ['app-counts-changelog', 'w', 3, 102],
    ['out', 'w', 3, 102],
  ]);
});
