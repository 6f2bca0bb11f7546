/**
 * Kafka Streams' own sliding-window tests, ported input for input with their expected outputs
 * (timestamps included): streams/src/test/java/org/apache/kafka/streams/kstream/internals/
 * KStreamSlidingWindowAggregateTest.java. Run with the record cache off (every update), with
 * emitStrategy 'on-window-close' (final results), and with the cache on (final value per window).
 */
import test from 'ava';
import { type EmitStrategy, Serdes, SlidingWindows, StreamsBuilder, type Windowed } from '@vltava/dsl';
import { TopologyTestDriver } from './topologyTestDriver.js';

const str = Serdes.string();

/** MockInitializer.STRING_INIT and MockAggregator.TOSTRING_ADDER. */
const init = (): string => '0';
const adder = (_k: string, v: string, agg: string): string => `${agg}+${v}`;

function topology(d: number, grace: number, emit: EmitStrategy, kind: 'aggregate' | 'reduce') {
  const b = new StreamsBuilder();
  const w = b.stream('topic', { keySerde: str, valueSerde: str }).groupByKey().windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(d, grace));
  const t =
    kind === 'aggregate'
      ? w.aggregate(init, adder, { name: 'store-name', valueSerde: str, emitStrategy: emit })
      : w.reduce((a, v) => `${a}+${v}`, { name: 'store-name', valueSerde: str, emitStrategy: emit });
  t.toStream().to('out', { keySerde: Serdes.windowed(str), valueSerde: str });
  return b.build();
}

type Row = { key: string; start: number; end: number; value: string | null; ts: number };

function run(topo: ReturnType<typeof topology>, input: [string, string, number][], cacheMaxBytes = 0): Row[] {
  const d = new TopologyTestDriver(topo, { cacheMaxBytes });
  const i = d.createInputTopic('topic', { keySerde: str, valueSerde: str });
  for (const [k, v, ts] of input) i.pipeInput(k, v, ts);
  const out = d
    .createOutputTopic<Windowed<string>, string>('out', { keySerde: Serdes.windowed(str), valueSerde: str })
    .readRecordsToList()
    .map((r) => ({ key: r.key!.key, start: r.key!.window.start, end: r.key!.window.end, value: r.value, ts: r.timestamp }));
  d.close();
  return out;
}

/** gatherOutput in the Java test: window start -> set of (value, timestamp). */
function byStart(rows: Row[]): Record<number, string[]> {
  const m: Record<number, string[]> = {};
  for (const r of rows) (m[r.start] ??= []).push(`${r.value}@${r.ts}`);
  for (const k of Object.keys(m)) m[Number(k)]!.sort();
  return m;
}

/** The last value per window (what a cached run must agree on). */
function finals(rows: Row[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const r of rows) m.set(`${r.key}[${r.start},${r.end}]`, `${r.value}@${r.ts}`);
  return m;
}

const SMALL: [string, string, number][] = [
  ['A', '1', 10],
  ['A', '2', 10],
  ['A', '3', 14],
  ['A', '4', 15],
  ['A', '5', 20],
  ['A', '6', 22],
  ['A', '7', 30],
];

test('KStreamSlidingWindowAggregateTest.testAggregateSmallInput (on-window-update)', (t) => {
  const rows = run(topology(10, 5, 'on-window-update', 'aggregate'), SMALL);
  t.deepEqual(byStart(rows), {
    0: ['0+1+2@10', '0+1@10'],
    4: ['0+1+2+3@14'],
    5: ['0+1+2+3+4@15'],
    10: ['0+1+2+3+4+5@20'],
    11: ['0+3+4+5@20', '0+3+4@15', '0+3@14'],
    12: ['0+3+4+5+6@22'],
    15: ['0+4+5+6@22', '0+4+5@20', '0+4@15'],
    16: ['0+5+6@22', '0+5@20'],
    20: ['0+5+6+7@30'],
    21: ['0+6+7@30', '0+6@22'],
    23: ['0+7@30'],
  });
  t.true(rows.every((r) => r.end === r.start + 10), 'windows are [start, start + d]');
  // With the record cache: the same final value and timestamp per window.
  t.deepEqual(finals(run(topology(10, 5, 'on-window-update', 'aggregate'), SMALL, 1 << 20)), finals(rows));
});

test('KStreamSlidingWindowAggregateTest.testAggregateSmallInput (EmitStrategy.onWindowClose)', (t) => {
  const rows = run(topology(10, 5, 'on-window-close', 'aggregate'), SMALL);
  t.deepEqual(byStart(rows), {
    0: ['0+1+2@10'],
    4: ['0+1+2+3@14'],
    5: ['0+1+2+3+4@15'],
    10: ['0+1+2+3+4+5@20'],
    11: ['0+3+4+5@20'],
    12: ['0+3+4+5+6@22'],
  });
  t.deepEqual(finals(run(topology(10, 5, 'on-window-close', 'aggregate'), SMALL, 1 << 20)), finals(rows));
});

const REDUCE: [string, string, number][] = [
  ['A', '1', 10],
  ['A', '2', 14],
  ['A', '3', 15],
  ['A', '4', 22],
  ['A', '5', 26],
  ['A', '6', 30],
];

test('KStreamSlidingWindowAggregateTest.testReduceSmallInput (on-window-update and onWindowClose)', (t) => {
  const rows = run(topology(10, 5, 'on-window-update', 'reduce'), REDUCE);
  t.deepEqual(byStart(rows), {
    0: ['1@10'],
    4: ['1+2@14'],
    5: ['1+2+3@15'],
    11: ['2+3@15', '2@14'],
    12: ['2+3+4@22'],
    15: ['3+4@22', '3@15'],
    16: ['4+5@26', '4@22'],
    20: ['4+5+6@30'],
    23: ['5+6@30', '5@26'],
    27: ['6@30'],
  });
  t.deepEqual(finals(run(topology(10, 5, 'on-window-update', 'reduce'), REDUCE, 1 << 20)), finals(rows));
  t.deepEqual(byStart(run(topology(10, 5, 'on-window-close', 'reduce'), REDUCE)), {
    0: ['1@10'],
    4: ['1+2@14'],
    5: ['1+2+3@15'],
    11: ['2+3@15'],
    12: ['2+3+4@22'],
  });
});

test('KStreamSlidingWindowAggregateTest.testAggregateLargeInput (EmitStrategy.onWindowClose, grace 10): late records skip closed windows only', (t) => {
  const input: [string, string, number][] = [
    ['A', '1', 10], ['A', '2', 20], ['A', '3', 22], ['A', '4', 15],
    ['B', '1', 12], ['B', '2', 13], ['B', '3', 18], ['B', '4', 19], ['B', '5', 25], ['B', '6', 14],
    ['C', '1', 11], ['C', '2', 15], ['C', '3', 16], ['C', '4', 21], ['C', '5', 23],
    ['D', '4', 11], ['D', '2', 12], ['D', '3', 29], ['D', '5', 16],
  ];
  const rows = run(topology(10, 10, 'on-window-close', 'aggregate'), input);
  const sorted = rows.map((r) => [r.key, r.start, r.end, r.value, r.ts]).sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : (a[1] as number) - (b[1] as number)));
  t.deepEqual(sorted, [
    ['A', 0, 10, '0+1', 10],
    ['A', 5, 15, '0+1+4', 15],
    ['B', 2, 12, '0+1', 12],
    ['B', 3, 13, '0+1+2', 13],
    ['B', 8, 18, '0+1+2+3+6', 18],
    ['C', 5, 15, '0+2', 15],
    ['C', 6, 16, '0+2+3', 16],
  ]);
});

// Issue 13, item 3: window ends are inclusive. With grace 0 an in-order record's own window is open.
test('sliding windows, grace 0: each in-order record updates its own window (end >= stream time - grace)', (t) => {
  const rows = run(topology(10, 0, 'on-window-update', 'aggregate'), [['A', '1', 20], ['A', '2', 40]]);
  t.deepEqual(rows.map((r) => [r.start, r.end, r.value, r.ts]), [[10, 20, '0+1', 20], [30, 40, '0+2', 40]]);
  // Final results come only once stream time passes end + grace: [10,20] at 40, [30,40] not yet.
  const fin = run(topology(10, 0, 'on-window-close', 'aggregate'), [['A', '1', 20], ['A', '2', 40], ['B', 'x', 40]]);
  t.deepEqual(fin.map((r) => [r.key, r.start, r.end, r.value]), [['A', 10, 20, '0+1']]);
});

// Issue 13, item 5: a record whose right window already exists does not re-emit that window.
test('sliding windows: an existing right window that the record does not fall in is not re-emitted', (t) => {
  const d = new TopologyTestDriver(topology(10, 100, 'on-window-update', 'aggregate'));
  const i = d.createInputTopic('topic', { keySerde: str, valueSerde: str });
  const out = d.createOutputTopic<Windowed<string>, string>('out', { keySerde: Serdes.windowed(str), valueSerde: str });
  for (const [v, ts] of [['1', 10], ['2', 15], ['3', 12]] as const) i.pipeInput('A', v, ts);
  t.deepEqual(out.readRecordsToList().map((r) => [r.key!.window.start, r.value, r.timestamp]), [
    [0, '0+1', 10],
    [11, '0+2', 15],
    [5, '0+1+2', 15],
    [11, '0+2+3', 15],
    [5, '0+1+2+3', 15],
    [2, '0+1+3', 12],
    [13, '0+2', 15],
  ]);
  i.pipeInput('A', '4', 12); // its right window [13, 23] exists and does not contain 12
  t.deepEqual(out.readRecordsToList().map((r) => [r.key!.window.start, r.value, r.timestamp]), [
    [11, '0+2+3+4', 15],
    [5, '0+1+2+3+4', 15],
    [2, '0+1+3+4', 12],
  ]);
});

// Issue 13, item 4: a record late for its own windows updates only windows still open, and
// windows created later start from stored aggregates, never from a buffer of late records.
test('sliding windows: a late record only updates open windows; later windows do not re-fold it', (t) => {
  const d = new TopologyTestDriver(topology(10, 0, 'on-window-update', 'aggregate'));
  const i = d.createInputTopic('topic', { keySerde: str, valueSerde: str });
  const out = d.createOutputTopic<Windowed<string>, string>('out', { keySerde: Serdes.windowed(str), valueSerde: str });
  i.pipeInput('A', 'a', 100);
  i.pipeInput('A', 'b', 85); // 85 + 1 + 10 <= 100: every window of it is closed
  i.pipeInput('A', 'c', 95); // [85,95] closed; [90,100] open; its right window [96,106] holds 100
  t.deepEqual(out.readRecordsToList().map((r) => [r.key!.window.start, r.value, r.timestamp]), [
    [90, '0+a', 100],
    [90, '0+a+c', 100],
    [96, '0+a', 100],
  ]);
  t.is(d.metrics().droppedByReason.get('late record (window closed)'), 2);
  i.pipeInput('A', 'd', 104);
  t.deepEqual(out.readRecordsToList().map((r) => [r.key!.window.start, r.value, r.timestamp]), [
    [96, '0+a+d', 104],
    [101, '0+d', 104],
    [94, '0+a+c+d', 104], // 95 lies in [94, 104]; 85 was never added anywhere
  ]);
});
