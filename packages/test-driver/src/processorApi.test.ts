import test from 'ava';
import {
  Serdes,
  Stores,
  StreamsBuilder,
  type KeyValueStore,
  type Processor,
  type ProcessorContext,
  type StreamRecord,
} from '@vltava/dsl';
import { TopologyTestDriver } from './topologyTestDriver.js';

const str = Serdes.string();
const int = Serdes.int64();

/** Sums values per key in a store and emits all sums on a punctuation. */
class SumProcessor implements Processor<string, number, string, number> {
  private ctx!: ProcessorContext<string, number>;
  private store!: KeyValueStore<string, number>;
  constructor(private readonly type: 'stream-time' | 'wall-clock', private readonly interval: number) {}
  init(ctx: ProcessorContext<string, number>): void {
    this.ctx = ctx;
    this.store = ctx.getStateStore('sums');
    ctx.schedule(this.interval, this.type, (ts) => {
      for (const kv of this.store.all()) this.ctx.forward({ key: kv.key, value: kv.value, timestamp: ts });
    });
  }
  process(r: StreamRecord<string, number>): void {
    this.store.put(r.key, (this.store.get(r.key) ?? 0) + r.value);
  }
}

function build(type: 'stream-time' | 'wall-clock', interval: number) {
  const b = new StreamsBuilder();
  b.addStateStore(Stores.keyValueStore({ name: 'sums', keySerde: str, valueSerde: int }));
  b.stream('in', { keySerde: str, valueSerde: int })
    .process(() => new SumProcessor(type, interval), { name: 'summer', stores: ['sums'] })
    .to('out', { keySerde: str, valueSerde: int });
  return b.build();
}

test('stream-time punctuators fire as record timestamps advance, once per record, skipping missed intervals', (t) => {
  const d = new TopologyTestDriver(build('stream-time', 1000));
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: int });
  const out = d.createOutputTopic('out', { keySerde: str, valueSerde: int });
  i.pipeInput('a', 1, 0); // first punctuation fires as soon as there is data (aligned to 0)
  t.deepEqual(out.readRecordsToList().map((r) => [r.key, r.value, r.timestamp]), [['a', 1, 0]]);
  i.pipeInput('a', 2, 500);
  t.true(out.isEmpty());
  i.pipeInput('b', 5, 999);
  t.true(out.isEmpty());
  i.pipeInput('a', 1, 1000);
  t.deepEqual(out.readRecordsToList().map((r) => [r.key, r.value, r.timestamp]), [['a', 4, 1000], ['b', 5, 1000]]);
  i.pipeInput('a', 1, 5500); // jumps 4 intervals: fires once
  t.is(out.getQueueSize(), 2);
  out.readRecordsToList();
  i.pipeInput('a', 1, 5900); // next is at 6000
  t.true(out.isEmpty());
  i.pipeInput('a', 1, 100); // out-of-order record: stream time stays at 5900
  t.true(out.isEmpty());
  d.advanceWallClockTime(60_000); // wall clock does not drive stream-time punctuators
  t.true(out.isEmpty());
  t.is(d.metrics().punctuations, 3);
});

test('wall-clock punctuators fire as the driver wall clock advances, not with record time', (t) => {
  const d = new TopologyTestDriver(build('wall-clock', 100), { initialWallClockTimeMs: 10_000 });
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: int });
  const out = d.createOutputTopic('out', { keySerde: str, valueSerde: int });
  i.pipeInput('a', 1, 1_000_000);
  t.true(out.isEmpty(), 'records do not trigger wall-clock punctuation');
  d.advanceWallClockTime(99);
  t.true(out.isEmpty());
  d.advanceWallClockTime(1);
  t.deepEqual(out.readRecordsToList().map((r) => [r.key, r.value, r.timestamp]), [['a', 1, 10_100]]);
  d.advanceWallClockTime(350); // skips missed intervals: fires once
  t.is(out.getQueueSize(), 1);
  t.is(out.readRecord().timestamp, 10_450);
  d.advanceWallClockTime(49);
  t.true(out.isEmpty());
  d.advanceWallClockTime(1);
  t.is(out.getQueueSize(), 1);
});

test('ProcessorContext gives record metadata, headers, task id, stream time; cancel stops a punctuator', (t) => {
  const seen: unknown[] = [];
  let cancels = 0;
  const b = new StreamsBuilder();
  b.stream('in', { keySerde: str, valueSerde: str }).process<string, string>(() => {
    let ctx: ProcessorContext<string, string>;
    let fired = 0;
    return {
      init(c) {
        ctx = c;
        const handle = c.schedule(10, 'stream-time', () => {
          fired++;
          if (fired === 2) {
            handle.cancel();
            cancels++;
          }
        });
      },
      process(r) {
        seen.push({ md: ctx.recordMetadata(), trace: r.headers?.['trace'], task: ctx.taskId, st: ctx.currentStreamTimeMs(), app: ctx.applicationId, fired });
        ctx.forward({ ...r, headers: { ...r.headers, seen: 'yes' } });
      },
    };
  }).to('out', { keySerde: str, valueSerde: str });
  const d = new TopologyTestDriver(b.build(), { applicationId: 'meta' });
  const i = d.createInputTopic('in', { keySerde: str, valueSerde: str });
  i.pipeRecord({ key: 'k', value: 'v', timestamp: 5, headers: { trace: 't-1' } });
  i.pipeInput('k', 'w', 50);
  i.pipeInput('k', 'x', 100);
  t.deepEqual(seen, [
    { md: { topic: 'in', partition: 0, offset: 0 }, trace: 't-1', task: '0_0', st: 5, app: 'meta', fired: 0 },
    { md: { topic: 'in', partition: 0, offset: 1 }, trace: undefined, task: '0_0', st: 50, app: 'meta', fired: 1 },
    { md: { topic: 'in', partition: 0, offset: 2 }, trace: undefined, task: '0_0', st: 100, app: 'meta', fired: 2 },
  ]);
  t.is(cancels, 1);
  t.is(d.metrics().punctuations, 2);
  const r = d.createOutputTopic('out', { keySerde: str, valueSerde: str }).readRecord();
  t.deepEqual(r.headers, { trace: 't-1', seen: 'yes' });
});

test('a processor cannot open a store it did not declare', (t) => {
  const b = new StreamsBuilder();
  b.addStateStore(Stores.keyValueStore({ name: 'mine' }));
  b.stream('a').process(() => ({ process() {} }), { stores: ['mine'] });
  b.stream('b').process(() => ({ init: (ctx) => void ctx.getStateStore('mine'), process() {} }), { name: 'sneaky' });
  // 'sneaky' is not connected to 'mine': the error names the fix
  t.throws(() => new TopologyTestDriver(b.build()), { message: /Processor "sneaky" is not connected to store "mine"\. Pass it in process\(supplier, \{ stores: \['mine'\] \}\)/ });
});

test('forward to a named child', (t) => {
  const b = new StreamsBuilder();
  const p = b.stream('in', { keySerde: str, valueSerde: int }).process<string, number>(
    () => {
      let ctx: ProcessorContext<string, number>;
      return { init: (c) => void (ctx = c), process: (r) => ctx.forward(r, r.value > 0 ? 'pos' : 'neg') };
    },
    { name: 'router' },
  );
  p.filter(() => true, { name: 'pos' }).to('pos', { keySerde: str, valueSerde: int });
  p.filter(() => true, { name: 'neg' }).to('neg', { keySerde: str, valueSerde: int });
  const d = new TopologyTestDriver(b.build());
  d.createInputTopic('in', { keySerde: str, valueSerde: int }).pipeKeyValueList([1, -1, 2].map((v) => ({ key: 'k', value: v })));
  t.deepEqual(d.createOutputTopic('pos', { keySerde: str, valueSerde: int }).readValuesToList(), [1, 2]);
  t.deepEqual(d.createOutputTopic('neg', { keySerde: str, valueSerde: int }).readValuesToList(), [-1]);
});

test('window and session stores work through the processor API and the driver getters', (t) => {
  const b = new StreamsBuilder();
  b.addStateStore(Stores.windowStore({ name: 'per-minute', keySerde: str, valueSerde: int, windowSizeMs: 60_000, retentionMs: 600_000 }));
  b.addStateStore(Stores.sessionStore({ name: 'sessions', keySerde: str, valueSerde: int, retentionMs: 600_000 }));
  b.stream('clicks', { keySerde: str, valueSerde: int }).process(
    () => {
      let win: import('@vltava/dsl').WindowStore<string, number>;
      let sessions: import('@vltava/dsl').SessionStore<string, number>;
      return {
        init(ctx) {
          win = ctx.getStateStore('per-minute');
          sessions = ctx.getStateStore('sessions');
        },
        process(r) {
          const start = r.timestamp - (r.timestamp % 60_000);
          win.put(r.key, (win.fetch(r.key, start) ?? 0) + r.value, start);
          sessions.put({ key: r.key, window: { start: r.timestamp, end: r.timestamp } }, r.value);
        },
      };
    },
    { stores: ['per-minute', 'sessions'] },
  );
  const d = new TopologyTestDriver(b.build(), { defaultPartitions: 2 });
  const i = d.createInputTopic('clicks', { keySerde: str, valueSerde: int });
  i.pipeInput('u1', 1, 1_000);
  i.pipeInput('u1', 2, 59_000);
  i.pipeInput('u1', 4, 61_000);
  i.pipeInput('u2', 8, 2_000);
  const w = d.getWindowStore<string, number>('per-minute');
  t.is(w.fetch('u1', 0), 3);
  t.is(w.fetch('u1', 60_000), 4);
  t.deepEqual([...w.fetchRange('u1', 0, 120_000)].map((kv) => [kv.key, kv.value]), [[0, 3], [60_000, 4]]);
  t.is(w.fetch('u2', 0), 8);
  const s = d.getSessionStore<string, number>('sessions');
  t.is(s.fetchSession('u1', 59_000, 59_000), 2);
  t.throws(() => d.getWindowStore('sessions'), { message: /no window store "sessions"; the topology has \[per-minute\]/ });
});

test('a timestamp extractor sets event time (and stream time); invalid timestamps drop the record', (t) => {
  const b = new StreamsBuilder();
  const json = Serdes.json<{ at: number; v: string }>();
  b.stream('events', { keySerde: str, valueSerde: json, timestampExtractor: (_k, e) => e.at }).mapValues((e) => e.v).to('out', { keySerde: str, valueSerde: str });
  const d = new TopologyTestDriver(b.build());
  const i = d.createInputTopic('events', { keySerde: str, valueSerde: json });
  i.pipeInput('k', { at: 5_000, v: 'a' }, 1);
  i.pipeInput('k', { at: -1, v: 'bad' }, 2);
  t.deepEqual(d.createOutputTopic('out', { keySerde: str, valueSerde: str }).readRecordsToList().map((r) => [r.value, r.timestamp]), [['a', 5_000]]);
  t.is(d.metrics().droppedByReason.get('invalid timestamp'), 1);
});
